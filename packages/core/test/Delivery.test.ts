import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Queue } from "effect"
import * as Consumer from "../src/Consumer.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, nothingMore, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

describe("delivery", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("plays back the backlog, then follows live notifications, each once and in order", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const backlog = yield* Effect.forEach([1, 2, 3], (n) => PgWatch.notify(channel, { n }))
        const { consumer, received } = yield* recordingConsumer({ id: "c1", channels: [channel] })
        const stop = yield* start(consumer)
        const replayed = yield* takeN(received, 3)
        expect(replayed.map((r) => r.id)).toEqual(backlog)
        expect(replayed.every((r) => r.isReplay)).toBe(true)
        expect(replayed.map((r) => r.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])

        const live = yield* PgWatch.notify(channel, { n: 4 })
        const [fourth] = yield* takeN(received, 1)
        expect(fourth!.id).toBe(live)
        expect(fourth!.isReplay).toBe(false)
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
      }))

    it.effect("a restarted consumer plays back exactly what it missed, then follows live", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const first = yield* recordingConsumer({ id: "restarts", channels: [channel] })
        const stopFirst = yield* start(first.consumer)
        yield* PgWatch.notifyMany(channel, [1, 2, 3])
        yield* takeN(first.received, 3)
        yield* stopFirst

        const missed = yield* PgWatch.notifyMany(channel, [4, 5])
        const second = yield* recordingConsumer({ id: "restarts", channels: [channel] })
        const stopSecond = yield* start(second.consumer)
        const replayed = yield* takeN(second.received, 2)
        expect(replayed.map((r) => r.id)).toEqual(missed)
        expect(replayed.every((r) => r.isReplay)).toBe(true)
        const live = yield* PgWatch.notify(channel, 6)
        const [sixth] = yield* takeN(second.received, 1)
        expect(sixth).toMatchObject({ id: live, isReplay: false, payload: 6 })
        expect(yield* nothingMore(second.received)).toHaveLength(0)
        yield* stopSecond
      }))

    it.effect("several consumers on one channel each get everything, tracked separately", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const healthy = yield* Effect.forEach(["a", "b"], (id) => recordingConsumer({ id: `fan_${id}`, channels: [channel] }))
        const attempted = yield* Queue.unbounded<void>()
        const failing = yield* recordingConsumer({
          id: "fan_failing",
          channels: [channel],
          handle: () => Effect.zipRight(Queue.offer(attempted, undefined), Effect.fail(new Consumer.Permanent({ message: "always broken" })))
        })
        const stops = yield* Effect.forEach([...healthy, failing], ({ consumer }) => start(consumer))
        const sent = yield* PgWatch.notifyMany(channel, Array.from({ length: 20 }, (_, i) => i))
        for (const { received } of healthy) {
          expect((yield* takeN(received, 20)).map((r) => r.id)).toEqual(sent)
        }
        // The failing consumer may lag the others: stop it only once it has tried every one.
        yield* Effect.forEach(sent, () => Queue.take(attempted), { discard: true })
        yield* Effect.forEach(stops, (stop) => stop)

        const { sql, settings } = yield* PgWatch.PgWatch
        const progress = yield* sql<{ id: string; handled: string; dead: string }>`
          SELECT c.id, c.handled::text,
                 (SELECT count(*) FROM ${sql(settings.schema)}.dead_letter d WHERE d.consumer_id = c.id)::text AS dead
            FROM ${sql(settings.schema)}.consumer c WHERE c.id LIKE 'fan_%' ORDER BY c.id`
        expect(progress).toEqual([
          { id: "fan_a", handled: "20", dead: "0" },
          { id: "fan_b", handled: "20", dead: "0" },
          { id: "fan_failing", handled: "20", dead: "20" }
        ])
      }))

    it.effect("a payload far over NOTIFY's 8000-byte limit is stored and delivered whole", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const big = { text: "x".repeat(200_000) }
        const { consumer, received } = yield* recordingConsumer({ id: "big", channels: [channel] })
        const stop = yield* start(consumer)
        yield* PgWatch.notify(channel, big)
        const [got] = yield* takeN(received, 1)
        expect(got!.payload).toEqual(big)
        yield* stop
      }))

    it.effect("a rolled-back transaction notifies nobody; a committed one does, atomically", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const sql = yield* PgClient.PgClient
        const { consumer, received } = yield* recordingConsumer({ id: "tx", channels: [channel] })
        const stop = yield* start(consumer)
        yield* sql.withTransaction(Effect.zipRight(PgWatch.notify(channel, "rolled back"), Effect.fail("abort"))).pipe(
          Effect.ignore
        )
        const kept = yield* sql.withTransaction(PgWatch.notify(channel, "committed"))
        const [got] = yield* takeN(received, 1)
        expect(got).toMatchObject({ id: kept, payload: "committed" })
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
      }))

    it.effect("with handler concurrency, everything is handled and progress never passes an unfinished one", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const gate = yield* Queue.unbounded<void>()
        const slowId = yield* PgWatch.notify(channel, "slow")
        const fastIds = yield* PgWatch.notifyMany(channel, Array.from({ length: 30 }, (_, i) => i))
        const { consumer, received } = yield* recordingConsumer({
          id: "parallel",
          channels: [channel],
          concurrency: 4,
          handle: (n) => n.id === slowId ? Queue.take(gate) : Effect.void
        })
        const stop = yield* start(consumer)
        const early = yield* takeN(received, 3) // three fast ones finish while the slow one blocks
        expect(early.map((n) => n.id)).not.toContain(slowId)
        const { sql, settings } = yield* PgWatch.PgWatch
        const before = yield* sql<{ handled: string }>`
          SELECT handled::text FROM ${sql(settings.schema)}.consumer WHERE id = 'parallel'`
        expect(before[0]!.handled).toBe("0")
        yield* Queue.offer(gate, undefined)
        const rest = yield* takeN(received, 28)
        // Each of the 31 exactly once: the slow one among the rest.
        expect(rest.map((n) => n.id)).toContain(slowId)
        expect([...early, ...rest].map((n) => n.id).sort((a, b) => Number(a - b))).toEqual([slowId, ...fastIds])
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
        const after = yield* sql<{ handled: string }>`
          SELECT handled::text FROM ${sql(settings.schema)}.consumer WHERE id = 'parallel'`
        expect(after[0]!.handled).toBe("31")
      }))
  })
})
