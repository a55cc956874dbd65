import { describe, expect, layer } from "@effect/vitest"
import { Effect, Queue } from "effect"
import * as Consumer from "../src/Consumer.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, nothingMore, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

describe("backlog and gaps", () => {
  layer(watchLayer({ pageSize: 50 }), { excludeTestServices: true })((it) => {
    it.effect("live notifications during a long playback never make it skip the rest of the backlog", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const backlog = yield* PgWatch.notifyMany(channel, Array.from({ length: 600 }, (_, i) => i))
        const gate = yield* Queue.unbounded<void>()
        const { consumer, received } = yield* recordingConsumer({
          id: "busy",
          channels: [channel],
          // The first notification waits until live ones have been sent.
          handle: (n) => (n.id === backlog[0] ? Queue.take(gate) : Effect.void)
        })
        const stop = yield* start(consumer)
        const live = yield* Effect.forEach([1, 2, 3], (n) => PgWatch.notify(channel, { live: n }))
        yield* Queue.offer(gate, undefined)
        const all = yield* takeN(received, 603)
        expect(all.map((n) => n.id)).toEqual([...backlog, ...live])
        expect(all.slice(0, 600).every((n) => n.isReplay)).toBe(true)
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
      }))

    it.effect("gap backfill keeps running after live traffic: a row whose wake-up never came is still delivered", () =>
      Effect.gen(function*() {
        const { sql, settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "gaps", channels: [channel] })
        const stop = yield* start(consumer)
        yield* PgWatch.notify(channel, "live")
        yield* takeN(received, 1)
        // Written straight into the log: no NOTIFY at all. Only the poll can find it.
        const [row] = yield* sql<{ id: string }>`
          INSERT INTO ${sql(settings.schema)}.notification_log (channel, payload)
          VALUES (${channel}, '"silent"') RETURNING id::text`
        const [found] = yield* takeN(received, 1)
        expect(found).toMatchObject({ id: BigInt(row!.id), payload: "silent" })
        yield* stop
      }))

    it.effect("a notification whose handler failed is never passed over because a later one succeeded", () =>
      Effect.gen(function*() {
        const { sql, settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        let failuresLeft = 2
        const [flaky, ...rest] = yield* PgWatch.notifyMany(channel, ["flaky", "a", "b", "c"])
        const { consumer, received } = yield* recordingConsumer({
          id: "flaky",
          channels: [channel],
          concurrency: 4,
          retry: Consumer.defaultRetry,
          handle: (n) =>
            n.id === flaky && failuresLeft-- > 0 ? Effect.fail(new Consumer.Retryable({ message: "try again" })) : Effect.void
        })
        const stop = yield* start(consumer)
        const got = yield* takeN(received, 4)
        expect(got.map((n) => n.id).sort()).toEqual([flaky!, ...rest].sort())
        yield* stop
        const dead = yield* sql`SELECT 1 FROM ${sql(settings.schema)}.dead_letter WHERE consumer_id = 'flaky'`
        expect(dead).toHaveLength(0)
      }))

    it.effect("a consumer stopped while a notification is being retried gets it again on restart", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const [stuck, after] = yield* PgWatch.notifyMany(channel, ["stuck", "after"])
        const attempts = yield* Queue.unbounded<bigint>()
        const failing = Consumer.make({
          id: "stuck",
          channels: [channel],
          concurrency: 2,
          handle: (n) =>
            Effect.zipRight(Queue.offer(attempts, n.id), n.id === stuck ? Effect.fail(new Consumer.Retryable({ message: "down" })) : Effect.void)
        })
        const stop = yield* start(failing)
        while ((yield* Queue.take(attempts)) !== stuck) { /* wait for the first attempt */ }
        yield* stop

        const { consumer, received } = yield* recordingConsumer({ id: "stuck", channels: [channel] })
        const stopAgain = yield* start(consumer)
        const got = yield* takeN(received, 2)
        expect(got.map((n) => n.id)).toEqual([stuck, after])
        yield* stopAgain
      }))
  })
})
