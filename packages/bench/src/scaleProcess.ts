/**
 * A child process of the scale scenario: N pgwatch consumers (`Consumer.layer`, no-op handlers
 * that count) under one `PgWatch.layer`, as an app runs them. It reports how long they took to
 * start and the memory right after, and answers the bench's requests for its CPU time and
 * counts over IPC.
 */
import * as PgWatch from "@pgwatch/core/PgWatch"
import * as Consumer from "@pgwatch/core/Consumer"
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, Redacted, Scope } from "effect"
import * as Pg from "pg"
import type { ScaleArgs, FromScale, ToScale } from "./scaleProtocol.js"

const send = (message: FromScale) => process.send?.(message)

// Every statement the process sends, on any connection (pool and listen): counted here rather
// than read from pg_stat_database, whose counts backends report up to 10 s late.
let statements = 0
const query = Pg.Client.prototype.query as (...args: Array<unknown>) => unknown
Pg.Client.prototype.query = function(this: Pg.Client, ...args: Array<unknown>) {
  statements += 1
  return query.apply(this, args)
} as typeof Pg.Client.prototype.query

const args: ScaleArgs = JSON.parse(process.argv[2] ?? "{}")
const counts = new Array<number>(args.consumers.length).fill(0)

const consumers = args.consumers.map(({ id, channels }, i) =>
  Consumer.layer(Consumer.make({
    id,
    channels,
    handle: () =>
      Effect.sync(() => {
        counts[i]! += 1
      })
  }))
)
const layer = Layer.mergeAll(...(consumers as [Layer.Layer<never, never, PgWatch.PgWatch>])).pipe(
  Layer.provide(PgWatch.layer({ schema: args.schema })),
  Layer.provide(PgClient.layer({ url: Redacted.make(args.url), maxConnections: args.poolSize, applicationName: "bench scale" }))
)

const scope = Effect.runSync(Scope.make())
const startedAt = performance.now()
const cpuAtStart = process.cpuUsage()
Effect.runPromise(Layer.buildWithScope(layer, scope)).then(
  () => {
    const ms = performance.now() - startedAt
    const { user, system } = process.cpuUsage(cpuAtStart)
    const memory = process.memoryUsage()
    send({ type: "started", ms, cpuMs: (user + system) / 1000, rssKb: Math.round(memory.rss / 1024), heapKb: Math.round(memory.heapUsed / 1024) })
  },
  (error: unknown) => send({ type: "failed", message: String(error) })
)

process.on("message", (message: ToScale) => {
  switch (message.type) {
    case "cpu": {
      const { user, system } = process.cpuUsage()
      send({ type: "cpu", us: user + system, at: performance.now(), statements })
      break
    }
    case "counts":
      send({ type: "counts", counts: [...counts] })
      break
    case "stop":
      void Promise.race([
        Effect.runPromise(Scope.close(scope, Exit.void)),
        new Promise((resolve) => setTimeout(resolve, 15_000).unref())
      ]).then(() => {
        send({ type: "stopped" })
        process.disconnect?.()
        process.exit(0)
      })
  }
})
process.on("disconnect", () => process.exit(0))
