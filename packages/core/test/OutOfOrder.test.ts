import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, nothingMore, query, rawClient, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

describe("out-of-order commits", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.scoped("a transaction that took a lower id but commits later is still delivered", () =>
      Effect.gen(function*() {
        const { settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "late", channels: [channel] })
        const stop = yield* start(consumer)

        // Transaction A takes id k and stays open; B takes k+1 and commits first.
        const a = yield* rawClient
        yield* query(a, "BEGIN")
        const k = (yield* query(a, `SELECT "${settings.schema}".smart_notify($1, '"A"') AS id`, [channel])).rows[0].id
        const kPlus1 = yield* PgWatch.notify(channel, "B")
        expect(BigInt(k)).toBeLessThan(kPlus1)
        const [first] = yield* takeN(received, 1)
        expect(first).toMatchObject({ id: kPlus1, payload: "B" })

        // A consumer that saw k+1 must not have moved past k: once A commits, k arrives.
        yield* query(a, "COMMIT")
        const [second] = yield* takeN(received, 1)
        expect(second).toMatchObject({ id: BigInt(k), payload: "A" })
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
      }))

    it.scoped("a late commit is not lost across a restart either", () =>
      Effect.gen(function*() {
        const { settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        const a = yield* rawClient
        yield* query(a, "BEGIN")
        yield* query(a, `SELECT "${settings.schema}".smart_notify($1, '"A"')`, [channel])
        yield* PgWatch.notify(channel, "B")

        const first = yield* recordingConsumer({ id: "late_restart", channels: [channel] })
        const stopFirst = yield* start(first.consumer)
        expect((yield* takeN(first.received, 1))[0]!.payload).toBe("B")
        yield* stopFirst

        yield* query(a, "COMMIT")
        const second = yield* recordingConsumer({ id: "late_restart", channels: [channel] })
        const stopSecond = yield* start(second.consumer)
        const [got] = yield* takeN(second.received, 1)
        expect(got!.payload).toBe("A")
        expect(yield* nothingMore(second.received)).toHaveLength(0)
        yield* stopSecond
      }))

    it.scoped("an aborted transaction's rows never arrive and never block the rest", () =>
      Effect.gen(function*() {
        const { settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "aborted", channels: [channel] })
        const stop = yield* start(consumer)
        const a = yield* rawClient
        yield* query(a, "BEGIN")
        yield* query(a, `SELECT "${settings.schema}".smart_notify($1, '"A"')`, [channel])
        yield* PgWatch.notify(channel, "B")
        yield* query(a, "ROLLBACK")
        yield* PgWatch.notify(channel, "C")
        expect((yield* takeN(received, 2)).map((n) => n.payload)).toEqual(["B", "C"])
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
      }))
  })
})
