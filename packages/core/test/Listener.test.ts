import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Option, Schedule } from "effect"
import * as Admin from "../src/Admin.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, query, rawClient, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

const listenerPid = (consumerId: string) =>
  Effect.gen(function*() {
    const { sql, settings } = yield* PgWatch.PgWatch
    const rows = yield* sql<{ pid: number }>`
      SELECT backend_pid AS pid FROM ${sql(settings.schema)}.waiting WHERE consumer_id = ${consumerId} LIMIT 1`
    return Option.fromNullable(rows[0]?.pid)
  })

/** Waits (polling the table, not sleeping blindly) until the consumer waits on a listener other than `not`. */
const awaitListener = (consumerId: string, not?: number) =>
  listenerPid(consumerId).pipe(
    Effect.flatMap((pid) => Option.isSome(pid) && pid.value !== not ? Effect.succeed(pid.value) : Effect.fail("not yet")),
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 500 }),
    Effect.orDie
  )

describe("listen connection loss", () => {
  // No polling to fall back on: only wake-ups and reconnect catch-up can deliver.
  layer(watchLayer({ pollInterval: "1 hour" }), { excludeTestServices: true })((it) => {
    it.scoped("a killed listen connection is replaced, missed notifications are caught up, and live wake-ups resume", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "killed", channels: [channel] })
        const stop = yield* start(consumer)
        const oldPid = yield* awaitListener("killed")
        yield* PgWatch.notify(channel, "before")
        yield* takeN(received, 1)

        const admin = yield* rawClient
        yield* query(admin, "SELECT pg_terminate_backend($1)", [oldPid])
        const during = yield* PgWatch.notify(channel, "during the outage")
        const [caughtUp] = yield* takeN(received, 1)
        expect(caughtUp!.id).toBe(during)

        const newPid = yield* awaitListener("killed", oldPid)
        expect(newPid).not.toBe(oldPid)
        const after = yield* PgWatch.notify(channel, "after")
        const [live] = yield* takeN(received, 1)
        expect(live).toMatchObject({ id: after, isReplay: false })
        yield* stop
      }))

    it.scoped("a write that checked for waiting consumers just before one registered is still delivered promptly", () =>
      Effect.gen(function*() {
        const { settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        // Written while nobody waits (so no NOTIFY will come), committed only after the
        // consumer has registered as waiting. No polling to fall back on: only the reader's
        // re-checks of such in-flight transactions can find it.
        const writer = yield* rawClient
        yield* query(writer, "BEGIN")
        yield* query(writer, `SELECT "${settings.schema}".smart_notify($1, '"racing"')`, [channel])
        const { consumer, received } = yield* recordingConsumer({ id: "racing", channels: [channel] })
        const stop = yield* start(consumer)
        yield* awaitListener("racing")
        yield* query(writer, "COMMIT")
        const [got] = yield* takeN(received, 1, "5 seconds")
        expect(got!.payload).toBe("racing")
        yield* stop
      }))

    it.scoped("a wake-up that comes while a batch is paged through still gets its rows read at once", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const firstStarted = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const { consumer, received } = yield* recordingConsumer({
          id: "mid-batch",
          channels: [channel],
          handle: (notification) =>
            notification.payload === 0
              ? Effect.zipRight(Deferred.succeed(firstStarted, undefined), Deferred.await(release))
              : Effect.void
        })
        const stop = yield* start(consumer, { pageSize: 2 })
        yield* awaitListener("mid-batch")
        // One transaction, three pages: the batch's snapshot is taken at the first page.
        yield* PgWatch.notifyMany(channel, [0, 1, 2, 3, 4])
        yield* Deferred.await(firstStarted)
        // Committed (and its wake-up received) while the first page is handled: it is not in
        // that batch, and no other wake-up will come for it.
        yield* PgWatch.notify(channel, "late")
        yield* Effect.sleep("200 millis")
        yield* Deferred.succeed(release, undefined)
        const got = yield* takeN(received, 6, "5 seconds")
        expect(got.map((n) => n.payload)).toEqual([0, 1, 2, 3, 4, "late"])
        yield* stop
      }))

    it.scoped("a replay request reaches a running consumer at once, without waiting for a poll", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "replayed", channels: [channel] })
        const stop = yield* start(consumer)
        yield* awaitListener("replayed")
        const id = yield* PgWatch.notify(channel, "once more")
        yield* takeN(received, 1)
        yield* Admin.replay({ consumerId: "replayed", logIds: [id] })
        const [again] = yield* takeN(received, 1, "5 seconds")
        expect(again).toMatchObject({ id, isReplay: true })
        yield* stop
      }))
  })
})
