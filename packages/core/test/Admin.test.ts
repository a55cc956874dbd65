import { describe, expect, layer } from "@effect/vitest"
import { Effect, Queue, Ref } from "effect"
import * as Admin from "../src/Admin.js"
import * as Consumer from "../src/Consumer.js"
import * as PgWatch from "../src/PgWatch.js"
import * as Retention from "../src/Retention.js"
import { freshChannel, nothingMore, query, rawClient, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

describe("Admin", () => {
  layer(watchLayer(), { excludeTestServices: true })("status, dead letters, redrive, replay", (it) => {
    it.effect("reports lag and dead letters, re-drives and replays through the redelivery table", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const failing = yield* Ref.make(true)
        const { consumer, received } = yield* recordingConsumer({
          id: "admin_c1",
          channels: [channel],
          handle: (n) =>
            Effect.gen(function*() {
              const payload = n.payload as { fail?: boolean }
              if (payload.fail === true && (yield* Ref.get(failing))) {
                return yield* new Consumer.Permanent({ message: "refused on purpose" })
              }
            })
        })
        const [id1, id2, id3] = yield* Effect.forEach([{ n: 1 }, { n: 2, fail: true }, { n: 3 }], (p) =>
          PgWatch.notify(channel, p))
        const stop = yield* start(consumer)
        const first = yield* takeN(received, 2)
        expect(first.map((n) => n.id)).toEqual([id1, id3])
        yield* stop

        const [settled] = yield* Admin.status({ consumerIds: ["admin_c1"] })
        expect(settled).toMatchObject({ id: "admin_c1", pending: 0, deadLetters: 1, deadLettered: 1, handled: 2, redeliveries: 0 })
        expect(settled!.lastError).toContain("refused on purpose")
        expect(settled!.lastLogId).toBe(id3)

        const [id4, id5] = yield* PgWatch.notifyMany(channel, [{ n: 4 }, { n: 5 }])
        const [behind] = yield* Admin.status({ consumerIds: ["admin_c1"] })
        expect(behind!.pending).toBe(2)
        expect(behind!.byChannel).toEqual([
          expect.objectContaining({ channel, pending: 2, deadLetters: 1 })
        ])
        expect(behind!.byChannel[0]!.oldestPendingAt).toBeInstanceOf(Date)
        expect(yield* Admin.status({ consumerIds: ["nobody"] })).toEqual([])

        const dead = yield* Admin.deadLetters()
        expect(dead).toHaveLength(1)
        expect(dead[0]).toMatchObject({ consumerId: "admin_c1", logId: id2, channel, reason: "permanent", payload: { n: 2, fail: true } })
        expect(yield* Admin.deadLetters({ consumerId: "admin_c1", logIds: [id1!] })).toEqual([])

        const unknown = yield* Effect.flip(Admin.deadLetters({ consumerId: "nobody" }))
        expect(unknown._tag === "AdminError" && unknown.reason).toBe("UnknownConsumer")
        expect(unknown.message).toContain("admin_c1")
        const notDead = yield* Effect.flip(Admin.redrive({ logIds: [id1!] }))
        expect(notDead._tag === "AdminError" && notDead.reason).toBe("UnknownLogIds")

        yield* Ref.set(failing, false)
        expect(yield* Admin.redrive({ consumerId: "admin_c1" })).toEqual([{ consumerId: "admin_c1", logId: id2 }])
        expect(yield* Admin.deadLetters()).toEqual([])
        expect(yield* Admin.replay({ consumerId: "admin_c1", logIds: [id1!] })).toEqual([id1])
        const wrongId = yield* Effect.flip(Admin.replay({ consumerId: "admin_c1", logIds: [id1!, 999999n] }))
        expect(wrongId._tag === "AdminError" && wrongId.reason).toBe("UnknownLogIds")
        expect(wrongId.message).toContain("999999")
        const [queued] = yield* Admin.status({ consumerIds: ["admin_c1"] })
        expect(queued!.redeliveries).toBe(2)

        const again = yield* start(consumer)
        const second = yield* takeN(received, 4)
        expect(second.map((n) => n.id).sort()).toEqual([id1, id2, id4, id5].sort())
        expect(second.filter((n) => n.id === id1 || n.id === id2).every((n) => n.isReplay)).toBe(true)
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* again
        const [done] = yield* Admin.status({ consumerIds: ["admin_c1"] })
        expect(done).toMatchObject({ pending: 0, deadLetters: 0, redeliveries: 0 })
      }))

    it.effect("replays everything written since a time", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "admin_c2", channels: [channel] })
        const ids = yield* PgWatch.notifyMany(channel, [{ n: 1 }, { n: 2 }])
        const stop = yield* start(consumer)
        yield* takeN(received, 2)
        const replayed = yield* Admin.replay({ consumerId: "admin_c2", since: new Date(Date.now() - 60_000) })
        expect(replayed).toEqual(ids)
        // A running consumer is woken and gets them again, as replays (within a poll interval).
        const again = yield* takeN(received, 2)
        expect(again.map((n) => [n.id, n.isReplay])).toEqual(ids.map((id) => [id, true]))
        expect(yield* Admin.replay({ consumerId: "admin_c2", since: new Date(Date.now() + 60_000) })).toEqual([])
        yield* stop
      }))

    it.effect("discards dead letters and removes consumers, so that cleanup can delete what they held", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        // Handlers started (poisoned ones included): a graceful stop lets them finish, dead
        // letters written, but starts no new one, so the test waits for all of them to start.
        const started = yield* Queue.unbounded<bigint>()
        const { consumer } = yield* recordingConsumer({
          id: "admin_poison",
          channels: [channel],
          handle: (n) =>
            Effect.zipRight(
              Queue.offer(started, n.id),
              (n.payload as { poison?: boolean }).poison === true
                ? Effect.fail(new Consumer.Permanent({ message: "poison" }))
                : Effect.void
            )
        })
        const [, bad1, bad2, bad3] = yield* PgWatch.notifyMany(channel, [{ n: 1 }, { poison: true }, { poison: true }, {
          poison: true
        }])
        const stop = yield* start(consumer)
        yield* Effect.forEach([1, 2, 3, 4], () => Queue.take(started)).pipe(Effect.timeout("10 seconds"))
        const running = yield* Effect.flip(Admin.removeConsumer("admin_poison"))
        expect(running).toMatchObject({ _tag: "AdminError", reason: "ConsumerRunning" })
        expect(running.message).toContain("stop it first")
        yield* stop
        expect((yield* Admin.deadLetters({ consumerId: "admin_poison" })).map((d) => d.logId)).toEqual([bad1, bad2, bad3])

        // Dead letters hold their notifications back from cleanup, however old.
        const { settings, sql } = yield* PgWatch.PgWatch
        yield* sql`UPDATE ${sql(settings.schema)}.notification_log SET created_at = now() - interval '30 days'
                    WHERE channel = ${channel}`
        const kept = yield* Retention.cleanup({ olderThan: "7 days", dryRun: true })
        expect(kept).toEqual({ deleted: 1, kept: 3 })

        const wrong = yield* Effect.flip(Admin.discardDeadLetters({ consumerId: "admin_poison", logIds: [bad1!, 999999n] }))
        expect(wrong).toMatchObject({ reason: "UnknownLogIds" })
        expect(wrong.message).toContain("999999")
        expect(yield* Admin.deadLetters({ consumerId: "admin_poison" })).toHaveLength(3)
        expect(yield* Admin.discardDeadLetters({ consumerId: "admin_poison", logIds: [bad1!] })).toEqual([bad1])
        const unknown = yield* Effect.flip(Admin.discardDeadLetters({ consumerId: "nobody" }))
        expect(unknown).toMatchObject({ reason: "UnknownConsumer" })

        // Removing the consumer takes its position, dead letters, redeliveries and waiting rows.
        yield* Admin.replay({ consumerId: "admin_poison", logIds: [bad1!] })
        yield* sql`INSERT INTO ${sql(settings.schema)}.waiting (channel, consumer_id, backend_pid)
                   VALUES (${channel}, 'admin_poison', pg_backend_pid())`
        expect(yield* Admin.removeConsumer("admin_poison")).toEqual({ consumerId: "admin_poison", deadLetters: 2, redeliveries: 1 })
        expect(yield* Admin.status({ consumerIds: ["admin_poison"] })).toEqual([])
        const left = yield* sql<{ n: number }>`
          SELECT ((SELECT count(*) FROM ${sql(settings.schema)}.dead_letter WHERE consumer_id = 'admin_poison') +
                  (SELECT count(*) FROM ${sql(settings.schema)}.redelivery WHERE consumer_id = 'admin_poison') +
                  (SELECT count(*) FROM ${sql(settings.schema)}.waiting WHERE consumer_id = 'admin_poison'))::int AS n`
        expect(left[0]!.n).toBe(0)
        // Nothing holds the old notifications back any more.
        expect(yield* Retention.cleanup({ olderThan: "7 days", dryRun: true })).toEqual({ deleted: 4, kept: 0 })
        expect(yield* Effect.flip(Admin.removeConsumer("admin_poison"))).toMatchObject({ reason: "UnknownConsumer" })
      }))

    it.effect("a consumer marked running whose session is gone is removed only with force", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "admin_vanished", channels: [channel] })
        const stop = yield* start(consumer)
        yield* PgWatch.notify(channel, { n: 1 })
        yield* takeN(received, 1)
        yield* stop
        // As a process killed with SIGKILL leaves it (or one whose listen connection never came up).
        const { settings, sql } = yield* PgWatch.PgWatch
        yield* sql`UPDATE ${sql(settings.schema)}.consumer
                      SET running_host = 'gone', running_pid = 1, running_since = now(), running_backend_pid = 2147483647
                    WHERE id = 'admin_vanished'`
        const refused = yield* Effect.flip(Admin.removeConsumer("admin_vanished"))
        expect(refused).toMatchObject({ reason: "ConsumerRunning" })
        expect(refused.message).toContain("--force")
        expect(yield* Admin.status({ consumerIds: ["admin_vanished"] })).toHaveLength(1)
        expect(yield* Admin.removeConsumer("admin_vanished", { force: true })).toMatchObject({ consumerId: "admin_vanished" })
        expect(yield* Admin.status({ consumerIds: ["admin_vanished"] })).toEqual([])
      }))

    it.scoped("reads the NOTIFY queue usage: a listener stalled in a transaction makes it grow", () =>
      Effect.gen(function*() {
        // A listener inside a transaction reads nothing, so the queue keeps what is sent after.
        const stalled = yield* rawClient
        const channel = freshChannel("stalled")
        yield* query(stalled, `LISTEN ${channel}`)
        yield* query(stalled, "BEGIN")
        yield* Effect.addFinalizer(() => query(stalled, "COMMIT"))
        const sender = yield* rawClient
        // About 80 kB: several of the queue's 8 kB pages (usage counts whole pages).
        yield* query(sender, `SELECT pg_notify($1, repeat('x', 4000) || i) FROM generate_series(1, 20) AS i`, [channel])
        const usage = yield* Admin.queueUsage
        expect(usage).toBeGreaterThan(0)
        expect(usage).toBeLessThan(0.01)
      }))
  })
})
