// The merged stream on a real PostgreSQL (issue #9): live rows straight from signed NOTIFYs,
// pages for playback and backfill, deduplicated against the cursor and its live set.
import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Deferred, Effect, Queue, Schedule } from "effect"
import * as Pg from "pg"
import * as Admin from "../src/Admin.js"
import * as PgWatch from "../src/PgWatch.js"
import * as Subscription from "../src/Subscription.js"
import { goLive, registered, schemaOf, sentinel, subscribe, take, viaLive } from "./liveSupport.js"
import { freshChannel, query, rawClient, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

describe("live rows merged with pages", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.scoped("a live row comes straight from its NOTIFY; the same NOTIFY replayed later is dropped", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const spy = yield* rawClient
        const heard = yield* Queue.unbounded<string>()
        spy.on("notification", (n) => Queue.unsafeOffer(heard, n.payload ?? ""))
        yield* query(spy, `LISTEN ${Pg.escapeIdentifier(channel)}`)
        const deliveries = yield* subscribe("replay", [channel])
        yield* goLive(channel, deliveries)

        const id = yield* PgWatch.notify(channel, { n: 1 })
        const [first] = yield* take(deliveries, 1)
        expect(first).toMatchObject({ id, payload: { n: 1 }, isReplay: false })
        expect(viaLive(first!)).toBe(true)
        // Anyone can LISTEN, keep a signed NOTIFY and send it again.
        let captured = ""
        while (!captured.includes(`:${id}:`)) captured = yield* Queue.take(heard)
        yield* query(spy, "SELECT pg_notify($1, $2)", [channel, captured])
        yield* sentinel(channel, deliveries)
      }))

    it.scoped("an id-only live row whose log row was deleted before it is read does not break the stream", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const schema = yield* schemaOf
        const deliveries = yield* subscribe("deleted", [channel], { confidential: true })
        yield* goLive(channel, deliveries)
        const writer = yield* rawClient
        yield* query(writer, "BEGIN")
        const inserted = yield* query(writer, `SELECT ${schema}.smart_notify($1, '{"gone": true}')::text AS id`, [channel])
        yield* query(writer, `DELETE FROM ${schema}.notification_log WHERE id = $1`, [inserted.rows[0].id])
        yield* query(writer, "COMMIT")
        const id = yield* PgWatch.notify(channel, { kept: true })
        const [next] = yield* take(deliveries, 1)
        expect(next).toMatchObject({ id, payload: { kept: true } })
        // Confidential: the payload was read from the log, by id.
        expect(viaLive(next!)).toBe(true)
      }))

    it.scoped("a 10,000-row transaction arrives once, in order", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const deliveries = yield* subscribe("big_tx", [channel])
        yield* goLive(channel, deliveries)
        const ids = yield* PgWatch.notifyMany(channel, Array.from({ length: 10_000 }, (_, n) => ({ n })))
        const got = yield* take(deliveries, ids.length)
        expect(got.map((d) => d.id)).toEqual(ids)
        expect(got.map((d) => d.payload)).toEqual(ids.map((_, n) => ({ n })))
        // 100 rows came in their NOTIFYs, the rest read by xid: all on the live path.
        expect(got.every(viaLive)).toBe(true)
        yield* sentinel(channel, deliveries)
      }))

    it.scoped("a row whose NOTIFY was never sent is found by backfill, once", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const schema = yield* schemaOf
        const deliveries = yield* subscribe("lost", [channel])
        yield* goLive(channel, deliveries)
        // The owner writes the log directly: no producer function, no NOTIFY.
        const owner = yield* rawClient
        const lost = yield* query(
          owner,
          `INSERT INTO ${schema}.notification_log (channel, payload) VALUES ($1, '{"lost": true}') RETURNING id::text`,
          [channel]
        )
        const later = yield* PgWatch.notify(channel, { later: true })
        // The later row comes live at once; the lost one with the next backfill (usually after
        // it).
        const got = yield* take(deliveries, 2)
        const lostId = BigInt(lost.rows[0].id)
        expect(new Set(got.map((d) => d.id))).toEqual(new Set([later, lostId]))
        expect(viaLive(got.find((d) => d.id === lostId)!)).toBe(false)
        expect(got.every((d) => !d.isReplay)).toBe(true)
        yield* sentinel(channel, deliveries)
      }))

    it.scoped("above the keep-up rate it switches from live rows to polling and back, each row once", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const sql = yield* PgClient.PgClient
        const schema = yield* schemaOf
        // 20 commits/s: what 8 writers exceed many times over, even on a loaded machine, and a
        // producer writing every 200 ms stays under.
        const deliveries = yield* subscribe("ramped", [channel], { keepUpRate: 20 })
        yield* goLive(channel, deliveries, "200 millis")
        // Polling shows as the registration going away while the writers run.
        const unregistered = yield* Deferred.make<void>()
        const writing = yield* Deferred.make<void>()
        yield* Effect.forkScoped(
          sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.waiting WHERE consumer_id = 'ramped'`).pipe(
            Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (rows) => rows[0]!.n === 0 }),
            Effect.zipRight(Deferred.succeed(unregistered, undefined)),
            Effect.raceFirst(Deferred.await(writing))
          )
        )
        // Ramped up: 8 writers, one row per transaction, until the reader has switched.
        const written: Array<bigint> = []
        yield* Effect.forEach(
          Array.from({ length: 8 }),
          () =>
            Effect.gen(function*() {
              while (!(yield* Deferred.isDone(unregistered))) written.push(yield* PgWatch.notify(channel, { n: written.length }))
            }),
          { concurrency: "unbounded", discard: true }
        ).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`never switched to polling (${written.length} rows)`) }))
        yield* Deferred.succeed(writing, undefined)
        const got = yield* take(deliveries, written.length)
        expect(new Set(got.map((d) => d.id))).toEqual(new Set(written))
        // Ramped down: rows every 200 ms go live again.
        yield* goLive(channel, deliveries, "200 millis")
        yield* sentinel(channel, deliveries)
      }), { timeout: 120_000 })

    it.scoped("live rows arriving while a 100k backlog plays back: each row once, replays flagged", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const schema = yield* schemaOf
        const owner = yield* rawClient
        const backlog = 100_000
        yield* query(
          owner,
          `INSERT INTO ${schema}.notification_log (channel, payload)
           SELECT $1, jsonb_build_object('n', g) FROM generate_series(1, ${backlog}) g`,
          [channel]
        )
        // Another reader of the channel, live: producers send row NOTIFYs, which reach the
        // reader below while it plays back.
        const other = yield* subscribe("bystander", [channel], { startFrom: "now" })
        const warmUps = yield* goLive(channel, other)
        const deliveries = yield* subscribe("plays_back", [channel])
        const [first] = yield* take(deliveries, 1)
        expect(first!.isReplay).toBe(true)
        // Written during the playback, and on after it, until one of them arrives live.
        const written: Array<bigint> = []
        const got: Array<Subscription.Delivery> = [first!]
        const done = yield* Deferred.make<void>()
        yield* Effect.forkScoped(Effect.gen(function*() {
          while (!(yield* Deferred.isDone(done))) written.push(yield* PgWatch.notify(channel, { live: written.length }))
        }))
        while (!viaLive(got.at(-1)!)) got.push(...yield* take(deliveries, 1))
        yield* Deferred.succeed(done, undefined)
        // Everything written (the producer's last row included) arrives once.
        const last = yield* PgWatch.notify(channel, { last: true })
        while (got.at(-1)!.id !== last) got.push(...yield* take(deliveries, 1))
        const ids = got.map((d) => d.id)
        expect(new Set(ids).size).toBe(ids.length)
        expect(ids.length).toBe(backlog + warmUps + written.length + 1)
        // The backlog (one transaction, first in the log), then the bystander's warm-up rows.
        expect(got.slice(0, backlog + warmUps).every((d) => d.isReplay)).toBe(true)
        expect(new Set(ids.slice(backlog + warmUps))).toEqual(new Set([...written, last]))
        // Rows written while it was listening are not replays.
        expect(got.slice(backlog).some((d) => !d.isReplay)).toBe(true)
      }), { timeout: 120_000 })
  })
})

describe("a restart with a persisted live set", () => {
  // No backfill while the test runs: the live set stays until the consumer stops.
  layer(watchLayer({ pollInterval: "10 minutes" }), { excludeTestServices: true })((it) => {
    it.scoped("neither repeats the rows delivered live nor loses what came after", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const sql = yield* PgClient.PgClient
        const schema = yield* schemaOf
        const first = yield* recordingConsumer({ id: "restarts_live", channels: [channel] })
        const stopFirst = yield* start(first.consumer)
        const before = yield* PgWatch.notifyMany(channel, [1, 2])
        yield* takeN(first.received, 2)
        yield* registered("restarts_live")
        // Caught up and registered: single rows from here on are delivered live.
        const live = yield* Effect.forEach([3, 4, 5], (n) =>
          Effect.zipLeft(PgWatch.notify(channel, n), takeN(first.received, 1)))
        yield* stopFirst
        const [saved] = yield* sql.unsafe<{ live: string; after: string | null }>(
          `SELECT live_xids::text AS live, live_after_id::text AS after FROM ${schema}.consumer WHERE id = 'restarts_live'`
        )
        expect(saved!.live).not.toBe("{}")
        expect(saved!.after).toBe(String(live.at(-1)))
        // `status` counts nothing of the live set as pending.
        const [status] = yield* Admin.status({ consumerIds: ["restarts_live"] })
        expect(status!.pending).toBe(0)

        const missed = yield* PgWatch.notifyMany(channel, [6, 7])
        const second = yield* recordingConsumer({ id: "restarts_live", channels: [channel] })
        const stopSecond = yield* start(second.consumer)
        const replayed = yield* takeN(second.received, 2)
        expect(replayed.map((r) => r.id)).toEqual(missed)
        yield* registered("restarts_live")
        const next = yield* PgWatch.notify(channel, 8)
        const [eighth] = yield* takeN(second.received, 1)
        expect(eighth!.id).toBe(next)
        expect(before.length).toBe(2)
        yield* stopSecond
      }))
  })
})
