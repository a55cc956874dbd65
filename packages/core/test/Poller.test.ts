import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Exit, Fiber, Option, Queue, Scope, TestClock, TestContext } from "effect"
import type * as Listener from "../src/internal/listener.js"
import * as Poller from "../src/internal/poller.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, watchLayer } from "./utils.js"

const INTERVAL = Duration.seconds(5)
const FALLBACK = Duration.millis(250)

/**
 * A poller on the real database, driven by the TestClock, whose statements are recorded: each
 * poll's input (one entry per consumer it covers) arrives on `polls`. Its listen connection is
 * a queue of events the test sends (`listen`), first `Listening`.
 */
const testPoller = Effect.gen(function*() {
  const listen = yield* Queue.unbounded<Listener.ListenerEvent>()
  yield* Queue.offer(listen, { _tag: "Listening", pid: 1 })
  const { settings } = yield* PgWatch.PgWatch
  const sql = yield* PgClient.PgClient
  const polls = yield* Queue.unbounded<ReadonlyArray<{ readonly id: string }>>()
  const recorded: Poller.PollerOptions["sql"] = {
    unsafe: <A extends object>(statement: string, params: ReadonlyArray<string>) =>
      Effect.zipRight(
        Queue.offer(polls, JSON.parse(params[0]!)),
        sql.unsafe<A>(statement, params)
      )
  }
  const poller = yield* Poller.make({
    sql: recorded,
    schema: settings.schema,
    pollInterval: INTERVAL,
    fallbackPollInterval: FALLBACK,
    listener: {
      subscribe: () =>
        Effect.succeed({
          take: Queue.take(listen),
          takeAll: Effect.map(Queue.takeAll(listen), (events) => [...events]),
          // The poller only takes events.
          waitPending: Effect.never,
          offer: () => undefined
        })
    }
  })
  /** Moves the clock one interval and returns what the poll that ran covered. */
  const poll = Effect.zipRight(TestClock.adjust(INTERVAL), Queue.take(polls))
  return { poller, poll, polls, listen, sql, schema: settings.schema }
})

/** The current snapshot, as a reader that has read everything would publish it. */
const snapshotNow = Effect.flatMap(PgClient.PgClient, (sql) =>
  Effect.map(sql<{ s: string }>`SELECT pg_current_snapshot()::text AS s`, ([row]) => row!.s))

const insertRow = (schema: string, channel: string) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    Effect.map(
      sql<{ xid: string }>`INSERT INTO ${sql(schema)}.notification_log (channel, payload) VALUES (${channel}, '{}') RETURNING xid::text`,
      ([row]) => row!.xid
    ))

/** Above every log id: all rows of the last live xid were had. */
const LAST_ID = "9223372036854775807"

/** Two rows in one transaction; their ids and xid. */
const insertTwo = (schema: string, channel: string) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    Effect.map(
      sql<{ id: string; xid: string }>`INSERT INTO ${sql(schema)}.notification_log (channel, payload)
        SELECT ${channel}, '{}' FROM generate_series(1, 2) RETURNING id::text, xid::text`,
      (rows) => ({ ids: rows.map((row) => row.id).sort((a, b) => Number(a) - Number(b)), xid: rows[0]!.xid })
    ))

/** Whether a fiber has finished, once the poll that could finish it has been processed. */
const finished = <A>(fiber: Fiber.Fiber<A>) => Effect.zipRight(Effect.yieldNow(), Fiber.poll(fiber))

describe("one poll per process", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.scoped("the last live transaction's rows after the one the reader had are found", () =>
      Effect.gen(function*() {
        const { poll, poller, schema } = yield* testPoller
        const channel = freshChannel("tail")
        const partly = yield* poller.watch("partly", [channel])
        const wholly = yield* poller.watch("wholly", [channel])
        const done = yield* snapshotNow
        const { ids, xid } = yield* insertTwo(schema, channel)
        // One had the first row live only; the other both.
        partly.publish(done, [xid], ids[0]!)
        wholly.publish(done, [xid], ids[1]!)
        const dues = yield* Effect.forEach([partly, wholly], (h) => Effect.fork(h.due))
        yield* poll
        expect(yield* Fiber.join(dues[0]!)).toBe("rows")
        expect(Option.isNone(yield* finished(dues[1]!))).toBe(true)
      }).pipe(Effect.provide(TestContext.TestContext)))

    it.scoped("one statement finds rows for the consumers that have them, and only for those", () =>
      Effect.gen(function*() {
        const { poll, poller, schema } = yield* testPoller
        const [busy, quiet] = [freshChannel("busy"), freshChannel("quiet")]
        const withRows = yield* poller.watch("with_rows", [quiet, busy])
        const without = yield* poller.watch("without", [quiet])
        const gotThemLive = yield* poller.watch("got_them_live", [busy])
        const done = yield* snapshotNow
        withRows.publish(done, [], "0")
        without.publish(done, [], "0")
        const xid = yield* insertRow(schema, busy)
        gotThemLive.publish(done, [xid], LAST_ID)

        const dues = yield* Effect.forEach([withRows, without, gotThemLive], (h) => Effect.fork(h.due))
        const covered = yield* poll
        expect(covered.map((c) => c.id).sort()).toEqual(["got_them_live", "with_rows", "without"])
        expect(yield* Fiber.join(dues[0]!)).toBe("rows")
        expect(Option.isNone(yield* finished(dues[1]!))).toBe(true)
        // Its rows came live: they are in its position already.
        expect(Option.isNone(yield* finished(dues[2]!))).toBe(true)

        // Having read them, the reader publishes its new position: nothing is due any more.
        withRows.publish(yield* snapshotNow, [], "0")
        const again = yield* Effect.fork(withRows.due)
        yield* poll
        expect(Option.isNone(yield* finished(again))).toBe(true)
      }).pipe(Effect.provide(TestContext.TestContext)))

    it.scoped("redeliveries requested for a consumer are due", () =>
      Effect.gen(function*() {
        const { poll, poller, schema, sql } = yield* testPoller
        const channel = freshChannel()
        const id = yield* insertRow(schema, channel)
        const handle = yield* poller.watch("redelivered", [channel])
        handle.publish(yield* snapshotNow, [], "0")
        yield* sql`INSERT INTO ${sql(schema)}.consumer (id, channels, done) VALUES ('redelivered', ${[channel]}, pg_current_snapshot())`
        yield* sql`INSERT INTO ${sql(schema)}.redelivery (consumer_id, log_id)
                   SELECT 'redelivered', id FROM ${sql(schema)}.notification_log WHERE xid = ${id}::xid8`
        const due = yield* Effect.fork(handle.due)
        yield* poll
        expect(yield* Fiber.join(due)).toBe("redeliveries")
      }).pipe(Effect.provide(TestContext.TestContext)))

    it.scoped("a consumer whose scope has closed is no longer polled", () =>
      Effect.gen(function*() {
        const { poll, poller } = yield* testPoller
        const channel = freshChannel()
        const stays = yield* poller.watch("stays", [channel])
        const scope = yield* Scope.make()
        const leaves = yield* poller.watch("leaves", [channel]).pipe(Scope.extend(scope))
        const done = yield* snapshotNow
        stays.publish(done, [], "0")
        leaves.publish(done, [], "0")
        expect((yield* poll).map((c) => c.id).sort()).toEqual(["leaves", "stays"])
        yield* Scope.close(scope, Exit.void)
        expect((yield* poll).map((c) => c.id)).toEqual(["stays"])
      }).pipe(Effect.provide(TestContext.TestContext)))

    it.scoped("while the listen connection is lost, the poll runs every fallback interval", () =>
      Effect.gen(function*() {
        const { listen, poll, poller, polls } = yield* testPoller
        const handle = yield* poller.watch("fallback", [freshChannel()])
        // The poller has taken its Listening (it polls at the fallback interval until then).
        yield* Effect.repeat(Effect.zipRight(Effect.yieldNow(), Queue.size(listen)), { until: (n) => n === 0 })
        handle.publish(yield* snapshotNow, [], "0")
        yield* poll
        // Listening: a fallback interval passes without a poll.
        yield* TestClock.adjust(FALLBACK)
        yield* Effect.repeatN(Effect.yieldNow(), 20)
        expect(yield* Queue.size(polls)).toBe(0)
        // Lost: a poll at once, then every fallback interval.
        yield* Queue.offer(listen, { _tag: "Lost", reason: "test" })
        yield* Queue.take(polls)
        yield* TestClock.adjust(FALLBACK)
        yield* Queue.take(polls)
        yield* TestClock.adjust(FALLBACK)
        yield* Queue.take(polls)
      }).pipe(Effect.provide(TestContext.TestContext)))
  })
})
