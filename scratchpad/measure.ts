/**
 * Quick figures for the core (the full comparison with peers is `npm run bench`):
 * drain rate of a backlog with a no-op handler, and end-to-end latency of single
 * notifications sent one at a time (commit returned -> handler started).
 *
 *   npx tsx --conditions=source scratchpad/measure.ts [backlog=100000] [samples=1000]
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Consumer, PgWatch } from "@pgwatch/core"
import { Console, Deferred, Effect, Layer, Queue } from "effect"
import { DatabaseLive } from "./database.js"

const backlog = Number(process.argv[2] ?? 100_000)
const samples = Number(process.argv[3] ?? 1000)
const schema = `measure_${process.pid}`
const payload = { kind: "order.created", id: 12345, customer: "c-0042", total: 99.5, items: [1, 2, 3], note: "x".repeat(100) }

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

const drain = Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  yield* sql`INSERT INTO ${sql(schema)}.notification_log (channel, payload)
             SELECT 'drain', ${JSON.stringify(payload)}::jsonb FROM generate_series(1, ${backlog})`
  let count = 0
  const done = yield* Deferred.make<void>()
  const consumer = Consumer.make({
    id: "drain",
    channels: ["drain"],
    handle: () => Effect.sync(() => ++count === backlog && Deferred.unsafeDone(done, Effect.void))
  })
  const started = performance.now()
  yield* Effect.scoped(Effect.zipRight(Layer.build(Consumer.layer(consumer)), Deferred.await(done)))
  const seconds = (performance.now() - started) / 1000
  yield* Console.log(`drain: ${backlog} notifications in ${seconds.toFixed(2)} s = ${Math.round(backlog / seconds)}/s (rss ${Math.round(process.memoryUsage().rss / 1e6)} MB)`)
})

const latency = Effect.gen(function*() {
  const started = yield* Queue.unbounded<number>()
  const consumer = Consumer.make({
    id: "latency",
    channels: ["latency"],
    handle: () => Queue.offer(started, performance.now())
  })
  yield* Effect.scoped(Effect.gen(function*() {
    yield* Layer.build(Consumer.layer(consumer))
    const timings: Array<number> = []
    for (let i = 0; i < samples + 100; i++) {
      yield* PgWatch.notify("latency", payload)
      const committed = performance.now()
      const handled = yield* Queue.take(started)
      if (i >= 100) timings.push(handled - committed) // the first 100 warm up
    }
    timings.sort((a, b) => a - b)
    const ms = (x: number) => `${x.toFixed(2)} ms`
    yield* Console.log(
      `latency (commit returned -> handler started, ${samples} sequential): p50 ${ms(percentile(timings, 0.5))}, ` +
        `p95 ${ms(percentile(timings, 0.95))}, p99 ${ms(percentile(timings, 0.99))}, max ${ms(timings.at(-1)!)}`
    )
  }))
})

Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  yield* Effect.addFinalizer(() => Effect.orDie(sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
  yield* drain
  yield* latency
}).pipe(
  Effect.scoped,
  Effect.provide(PgWatch.layer({ schema, migrate: true }).pipe(Layer.provideMerge(DatabaseLive))),
  NodeRuntime.runMain
)
