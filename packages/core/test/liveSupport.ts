// Helpers for tests of the merged stream: a reader's deliveries in a queue, and ways to wait
// for it to be live.
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { expect } from "@effect/vitest"
import { Deferred, Duration, Effect, Option, Queue, Schedule, Stream } from "effect"
import * as Cursor from "../src/internal/cursor.js"
import * as Reader from "../src/internal/reader.js"
import * as PgWatch from "../src/PgWatch.js"
import * as Subscription from "../src/Subscription.js"

/** Delivered from the listen connection (a page row never moves `liveAfterId` to its own id). */
export const viaLive = (delivery: Subscription.Delivery) =>
  Option.getOrThrow(delivery.cursor).liveAfterId === String(delivery.id)

/** Runs the stream for the rest of the scope, into a queue; returns once it listens. */
export const subscribe = (
  consumerId: string,
  channels: ReadonlyArray<string>,
  options: { readonly confidential?: boolean; readonly startFrom?: "now"; readonly keepUpRate?: number } = {}
) =>
  Effect.gen(function*() {
    const deliveries = yield* Queue.unbounded<Subscription.Delivery>()
    const subscribed = yield* Deferred.make<void>()
    const { keepUpRate, ...rest } = options
    // The keep-up rate is the reader's; a test lowers it to what a loaded machine can write.
    const stream = keepUpRate === undefined
      ? Subscription.stream({ consumerId, channels, subscribed, ...rest })
      : Stream.unwrap(Effect.gen(function*() {
        const watch = yield* PgWatch.PgWatch
        const start = yield* Cursor.register(watch.settings.schema, consumerId, channels, "beginning")
        return Reader.stream({
          ...watch.settings,
          consumerId,
          channels,
          confidential: [],
          start,
          listener: watch.listener,
          subscribed,
          keepUpRate
        }).pipe(Stream.provideService(SqlClient.SqlClient, watch.sql))
      }).pipe(Effect.provideServiceEffect(SqlClient.SqlClient, Effect.map(PgWatch.PgWatch, (w) => w.sql))))
    yield* Effect.forkScoped(stream.pipe(Stream.runForEach((delivery) => Queue.offer(deliveries, delivery))))
    yield* Deferred.await(subscribed)
    return deliveries
  })

export const take = (deliveries: Queue.Dequeue<Subscription.Delivery>, n: number) =>
  Effect.gen(function*() {
    const taken: Array<Subscription.Delivery> = []
    while (taken.length < n) taken.push(yield* Queue.take(deliveries))
    return taken
  }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`expected ${n} deliveries`) }))

/**
 * Writes rows one at a time until one arrives live (the reader is then caught up); how many.
 * `pace` spaces the writes: a producer slower than a lowered keep-up rate.
 */
export const goLive = (channel: string, deliveries: Queue.Dequeue<Subscription.Delivery>, pace?: Duration.DurationInput) =>
  Effect.gen(function*() {
    for (let written = 1;; written++) {
      const id = yield* PgWatch.notify(channel, { warmUp: true })
      const [delivery] = yield* take(deliveries, 1)
      expect(delivery!.id).toBe(id)
      if (viaLive(delivery!)) return written
      if (pace !== undefined) yield* Effect.sleep(pace)
    }
  }).pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error("the reader never went live") }))

/** A row written after everything before it; the next delivery must be this one. */
export const sentinel = (channel: string, deliveries: Queue.Dequeue<Subscription.Delivery>) =>
  Effect.gen(function*() {
    const id = yield* PgWatch.notify(channel, { sentinel: true })
    const [next] = yield* take(deliveries, 1)
    expect(next!.id).toBe(id)
  })

/** Waits until the consumer is registered as waiting (producers then send it NOTIFYs). */
export const registered = (consumerId: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const schema = yield* schemaOf
    yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.waiting WHERE consumer_id = $1`, [consumerId]).pipe(
      Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (rows) => rows[0]!.n > 0 }),
      Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`${consumerId} never registered`) })
    )
  })

export const schemaOf = Effect.map(PgWatch.PgWatch, (watch) => `"${watch.settings.schema}"`)
