import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Deferred, Duration, Effect, Fiber, Layer, Schema, TestClock } from "effect"
import type { Cursor } from "../src/internal/cursor.js"
import * as Pages from "../src/internal/pages.js"
import * as Snapshot from "../src/internal/snapshot.js"
import * as SqlFiles from "../src/internal/sqlFiles.js"
import * as Json from "../src/Json.js"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import { dropRoles } from "./roleUtils.js"
import { dropSchemaFinally, freshChannel, freshSchema, PgLive, query, rawClient, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

const schema = freshSchema()

const SchemaLive = Layer.scopedDiscard(Effect.zipRight(dropSchemaFinally(schema), Migrator.migrate({ schema }))).pipe(
  Layer.provideMerge(PgLive)
)

const beginning: Cursor = { done: Snapshot.beginning, batch: null, afterXid: "0", afterId: "0", live: [], liveAfterId: "0" }
const UNBOUNDED = 1 << 30

/** Rows written in one transaction, each `[channel, payload]`; their ids in order. */
const write = (rows: ReadonlyArray<readonly [string, unknown]>) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    sql<{ id: string }>`
      INSERT INTO ${sql(schema)}.notification_log (channel, payload)
      SELECT c, p FROM unnest(${rows.map(([c]) => c)}::text[], ${rows.map(([, p]) => JSON.stringify(p))}::jsonb[]) AS r(c, p)
      RETURNING id::text`)

/** The rows on these channels visible since `done`, in (xid, id) order, as a plain query finds them. */
const expected = (channels: ReadonlyArray<string>, done = Snapshot.beginning) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    sql<{ id: string; xid: string; bytes: number }>`
      SELECT id::text, xid::text,
             CASE WHEN pg_column_compression(payload) IS NULL THEN pg_column_size(payload) ELSE octet_length(payload::text) END AS bytes
        FROM ${sql(schema)}.notification_log l
       WHERE channel = ANY(${channels}::text[]) AND NOT pg_visible_in_snapshot(xid, ${done}::pg_snapshot)
         AND pg_visible_in_snapshot(xid, pg_current_snapshot())
       ORDER BY l.xid, l.id`)

/** Every page of one batch from the cursor on. */
const drain = (request: Omit<Pages.PageRequest, "cursor">, from: Cursor = beginning) =>
  Effect.gen(function*() {
    const pages: Array<Pages.Page> = []
    let cursor = from
    for (;;) {
      const page = yield* Pages.read({ ...request, cursor })
      pages.push(page)
      if (page.complete) return pages
      const last = page.rows.at(-1)!
      cursor = { done: cursor.done, batch: page.batch, afterXid: last.xid, afterId: String(last.id), live: [], liveAfterId: "0" }
    }
  })

const ids = (pages: ReadonlyArray<Pages.Page>) => pages.flatMap((page) => page.rows.map((row) => String(row.id)))

/** The rows fetched by index scans on the log so far in this transaction. */
const rowsFetched = Effect.flatMap(PgClient.PgClient, (sql) =>
  Effect.map(
    sql<{ fetched: string }>`SELECT idx_tup_fetch::text AS fetched FROM pg_stat_xact_user_tables
                             WHERE schemaname = ${schema} AND relname = 'notification_log'`,
    (rows) => Number(rows[0]!.fetched)
  ))

describe("multi-channel pages", () => {
  layer(SchemaLive, { excludeTestServices: true })((it) => {
    it.effect("the reader is one merge for 2 to 512 channels", () =>
      Effect.sync(() => {
        expect([1, 2, 3, 100, 512, 513].map(Pages.readerFor)).toEqual([
          "read_batch_page",
          "read_page_2",
          "read_page_4",
          "read_page_128",
          "read_page_512",
          "read_batch_page"
        ])
      }))

    for (const k of [2, 3, 100, 600]) {
      it.effect(`${k} channels: every row once, in (xid, id) order across them, theirs only, from any position`, () =>
        Effect.gen(function*() {
          const channels = Array.from({ length: k }, () => freshChannel())
          const other = freshChannel("other")
          // 20 transactions of 11 rows, over the channels in turn and one channel not read.
          for (let t = 0; t < 20; t++) {
            yield* write(Array.from({ length: 11 }, (_, i) => [i === 5 ? other : channels[(t * 7 + i) % k]!, { t, i }] as const))
          }
          const want = yield* expected(channels)
          expect(want.length).toBe(200)
          const pages = yield* drain({ schema, channels, pageSize: 7, pageBytes: UNBOUNDED })
          expect(ids(pages)).toEqual(want.map((row) => row.id))
          expect(pages.map((page) => page.rows.length)).toEqual([...Array(28).fill(7), 4])
          expect(pages.map((page) => page.complete)).toEqual([...Array(28).fill(false), true])
          // From a position in the middle of the batch: the rest of it.
          const middle = want[99]!
          const rest = yield* drain({ schema, channels, pageSize: 50, pageBytes: UNBOUNDED }, {
            done: Snapshot.beginning,
            batch: pages[0]!.batch,
            afterXid: middle.xid,
            afterId: middle.id,
            live: [],
            liveAfterId: "0"
          })
          expect(ids(rest)).toEqual(want.slice(100).map((row) => row.id))
        }))
    }

    it.scoped("rows of transactions in progress at done come, in order, and none visible in done", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const channels = [freshChannel(), freshChannel(), freshChannel()]
        yield* write([[channels[0]!, "before"], [channels[1]!, "before"]])
        const open = yield* rawClient
        yield* query(open, "BEGIN")
        yield* query(open, `INSERT INTO "${schema}".notification_log (channel, payload) SELECT unnest($1::text[]), '"open"'`, [[
          channels[2],
          channels[0],
          channels[1],
          channels[2]
        ]])
        yield* query(open, "SELECT pg_current_xact_id()")
        yield* write([[channels[1]!, "committed while open"]])
        const [{ done }] = yield* sql<{ done: string }>`SELECT pg_current_snapshot()::text AS done`
        expect(Snapshot.inProgress(done!).length).toBeGreaterThan(0)
        yield* query(open, "COMMIT")
        yield* write([[channels[0]!, "after"], [channels[2]!, "after"]])
        const want = yield* expected(channels, done!)
        expect(want.length).toBe(6)
        // One row a page: the position moves through the open transaction's rows (part a).
        const pages = yield* drain({ schema, channels, pageSize: 1, pageBytes: UNBOUNDED }, {
          done: done!,
          batch: null,
          afterXid: "0",
          afterId: "0",
          live: [],
          liveAfterId: "0"
        })
        expect(ids(pages)).toEqual(want.map((row) => row.id))
        expect(pages.flatMap((page) => page.rows.map((row) => row.payload))).toEqual(["open", "open", "open", "open", "after", "after"])
      }))

    it.effect("pages end before their payloads pass the byte budget; a larger row comes alone", () =>
      Effect.gen(function*() {
        const channels = [freshChannel(), freshChannel(), freshChannel()]
        const sizes = [300, 300, 300, 5000, 100, 700, 200, 200, 200, 200]
        yield* write(sizes.map((n, i) => [channels[i % 3]!, "x".repeat(n)] as const))
        const want = yield* expected(channels)
        const budget = 1000
        // What the budget allows, row by row: as many as fit, at least one.
        const lengths: Array<number> = []
        let total = 0
        for (const row of want) {
          if (lengths.length > 0 && lengths.at(-1)! > 0 && total + row.bytes <= budget) {
            lengths[lengths.length - 1]! += 1
            total += row.bytes
          } else {
            lengths.push(1)
            total = row.bytes
          }
        }
        const pages = yield* drain({ schema, channels, pageSize: 100, pageBytes: budget })
        expect(ids(pages)).toEqual(want.map((row) => row.id))
        expect(pages.map((page) => page.rows.length)).toEqual(lengths)
        expect(lengths).toContain(1)
        expect(pages.map((page) => page.complete)).toEqual([...Array(lengths.length - 1).fill(false), true])
      }))

    it.effect("a page on 100 channels reads about the rows it returns, not a page per channel", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const channels = Array.from({ length: 100 }, () => freshChannel())
        for (let t = 0; t < 10; t++) yield* write(channels.map((c, i) => [c, { t, i }] as const))
        const fetched = yield* sql.withTransaction(Effect.gen(function*() {
          const before = yield* rowsFetched
          const page = yield* Pages.read({ schema, channels, cursor: beginning, pageSize: 50, pageBytes: UNBOUNDED })
          expect(page.rows.length).toBe(50)
          return (yield* rowsFetched) - before
        }))
        // The merge reads the page, one more row, and one row ahead on each other channel;
        // one index range per channel read 100 x 51.
        expect(fetched).toBeLessThanOrEqual(51 + 99)
      }))
  })
})

describe("upgrading in place", () => {
  layer(SchemaLive, { excludeTestServices: true })((it) => {
    it.effect("0011 lets whoever reads with read_batch_page read several channels, before grant runs again", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const role = `pages_reader_${schema}`
        yield* Effect.addFinalizer(() => dropRoles([role]).pipe(Effect.orDie))
        // An installation before 0011, its consumer role granted: then 0011 runs.
        for (const arity of Pages.mergedArities) yield* sql.unsafe(`DROP FUNCTION "${schema}".read_page_${arity}`)
        yield* sql.unsafe(`CREATE ROLE ${role}`)
        yield* sql.unsafe(`GRANT USAGE ON SCHEMA "${schema}" TO ${role}`)
        yield* sql.unsafe(`GRANT SELECT ON "${schema}".notification_log TO ${role}`)
        yield* sql.unsafe(`GRANT EXECUTE ON FUNCTION "${schema}".read_batch_page TO ${role}`)
        const files = yield* SqlFiles.load(schema)
        yield* sql.unsafe(files.find((file) => file.version === 11)!.text)
        const channels = [freshChannel(), freshChannel(), freshChannel()]
        yield* write(channels.map((c) => [c, c] as const))
        const page = yield* sql.withTransaction(Effect.zipRight(
          sql.unsafe(`SET LOCAL ROLE ${role}`),
          Pages.read({ schema, channels, cursor: beginning, pageSize: 10, pageBytes: UNBOUNDED })
        ))
        expect(page.rows.map((row) => row.payload)).toEqual(channels)
      }).pipe(Effect.scoped))
  })
})

describe("shared page reads", () => {
  layer(SchemaLive)((it) => {
    it.scoped("identical requests read once and get the same frozen page, equal to an unshared read", () =>
      Effect.gen(function*() {
        const shared = yield* Pages.makeShared()
        const channels = [freshChannel(), freshChannel()]
        yield* write([[channels[0]!, { a: [1, { b: 2 }] }], [channels[1]!, { n: 12345678901234567890n.toString() }]])
        const request = { schema, channels, cursor: beginning, pageSize: 10, pageBytes: UNBOUNDED }
        const [one, two] = yield* Effect.all([
          Pages.read({ ...request, shared }),
          Pages.read({ ...request, channels: [...channels].reverse(), shared })
        ], { concurrency: "unbounded" })
        expect(two).toBe(one)
        const alone = yield* Pages.read({ ...request, cursor: { ...beginning, batch: one!.batch } })
        expect(one).toEqual(alone)
        expect(Object.isFrozen(one!.rows)).toBe(true)
        const payload = one!.rows[0]!.payload as { a: [number, { b: number }] }
        expect(Object.isFrozen(payload) && Object.isFrozen(payload.a) && Object.isFrozen(payload.a[1])).toBe(true)
        // A later identical request, within the lifetime, is the same read if it may take a
        // batch begun before it; else it reads a batch of its own.
        expect(yield* Pages.read({ ...request, shared, acceptEarlierBatch: true })).toBe(one)
        expect(yield* Pages.read({ ...request, shared })).not.toBe(one)
      }))

    it.scoped("between batches, a reader that needs a fresh batch never gets one begun before its call", () =>
      Effect.gen(function*() {
        const shared = yield* Pages.makeShared()
        const channels = [freshChannel(), freshChannel()]
        const request = { schema, channels, cursor: beginning, pageSize: 10, pageBytes: UNBOUNDED, shared }
        yield* write([[channels[0]!, 1]])
        const first = yield* Pages.read(request)
        yield* write([[channels[1]!, 2]])
        // As woken by the second write: its row is in the batch.
        const woken = yield* Pages.read(request)
        expect(woken.rows.map((row) => row.payload)).toEqual([1, 2])
        // Polling, the last batch read is good enough.
        expect(yield* Pages.read({ ...request, acceptEarlierBatch: true })).toBe(woken)
        expect(first.rows.map((row) => row.payload)).toEqual([1])
      }))

    it.scoped("consumers at different positions, moving on and reading again, each get every row once", () =>
      Effect.gen(function*() {
        const shared = yield* Pages.makeShared()
        const channels = [freshChannel(), freshChannel()]
        const request = { schema, channels, pageSize: 3, pageBytes: UNBOUNDED, shared, acceptEarlierBatch: true }
        yield* write(Array.from({ length: 8 }, (_, i) => [channels[i % 2]!, i] as const))
        // Two consumers read in turn, one page each, with writes between their reads; the
        // second starts a page behind the first.
        const got: [Array<string>, Array<string>] = [[], []]
        const cursors: [Cursor, Cursor] = [beginning, beginning]
        const step = (c: 0 | 1) =>
          Effect.gen(function*() {
            const cursor = cursors[c]
            const page = yield* Pages.read({ ...request, cursor })
            got[c].push(...page.rows.map((row) => String(row.id)))
            const last = page.rows.at(-1)
            cursors[c] = page.complete
              ? { done: page.batch, batch: null, afterXid: "0", afterId: "0", live: [], liveAfterId: "0" }
              : { done: cursor.done, batch: page.batch, afterXid: last!.xid, afterId: String(last!.id), live: [], liveAfterId: "0" }
          })
        yield* step(0)
        for (let round = 0; round < 12; round++) {
          yield* write([[channels[round % 2]!, 100 + round]])
          yield* step(0)
          yield* step(1)
        }
        // The clock has not moved: every read was on offer to the other consumer. Then let
        // pages expire, so that both read the last writes.
        yield* TestClock.adjust(Duration.millis(shared.lifetimeMillis))
        for (let i = 0; i < 10; i++) yield* Effect.all([step(0), step(1)])
        const want = (yield* expected(channels)).map((row) => row.id)
        expect(want.length).toBe(20)
        expect(got[0]).toEqual(want)
        expect(got[1]).toEqual(want)
      }))

    it.scoped("between batches, a page past its lifetime is read again, with a new snapshot", () =>
      Effect.gen(function*() {
        const shared = yield* Pages.makeShared()
        const channels = [freshChannel(), freshChannel()]
        const request = { schema, channels, cursor: beginning, pageSize: 10, pageBytes: UNBOUNDED, shared, acceptEarlierBatch: true }
        yield* write([[channels[0]!, 1]])
        const first = yield* Pages.read(request)
        yield* write([[channels[1]!, 2]])
        yield* TestClock.adjust(Duration.millis(shared.lifetimeMillis - 1))
        expect(yield* Pages.read(request)).toBe(first)
        yield* TestClock.adjust(Duration.millis(1))
        const second = yield* Pages.read(request)
        expect(second.rows.map((row) => row.payload)).toEqual([1, 2])
      }))

    it.scoped("a read outlives the consumer that started it: another awaiting it still gets the page", () =>
      Effect.gen(function*() {
        const shared = yield* Pages.makeShared()
        const channels = [freshChannel(), freshChannel()]
        yield* write([[channels[0]!, 1]])
        const request = { schema, channels, cursor: beginning, pageSize: 10, pageBytes: UNBOUNDED, shared }
        // Hold the log so that the read waits, start it, join it, then stop its starter.
        const blocker = yield* rawClient
        yield* query(blocker, "BEGIN")
        yield* query(blocker, `LOCK TABLE "${schema}".notification_log IN ACCESS EXCLUSIVE MODE`)
        const started = yield* Deferred.make<void>()
        const starter = yield* Effect.fork(Effect.zipRight(Deferred.succeed(started, undefined), Pages.read(request)))
        yield* Deferred.await(started)
        const joiner = yield* Effect.fork(Pages.read(request))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(starter)
        yield* query(blocker, "COMMIT")
        const page = yield* Fiber.join(joiner)
        expect(page.rows.map((row) => row.payload)).toEqual([1])
      }))
  })
})

describe("shared pages through consumers", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("consumers of one process on one channel each get every row, frozen payloads decoded by their schema", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const Payload = Schema.Struct({ n: Json.Integer, tags: Schema.Array(Schema.String), at: Schema.Date })
        yield* PgWatch.notifyMany(
          channel,
          Array.from({ length: 30 }, (_, i) => ({ n: 9007199254740993n + BigInt(i), tags: ["a", String(i)], at: new Date(i) }))
        )
        const consumers = yield* Effect.forEach([0, 1, 2], (i) =>
          recordingConsumer({ id: `schema-${i}`, channels: [channel], schema: Payload }))
        const stops = yield* Effect.forEach(consumers, ({ consumer }) => start(consumer))
        for (const { received } of consumers) {
          const got = yield* takeN(received, 30)
          expect(got.map((n) => n.payload.n)).toEqual(Array.from({ length: 30 }, (_, i) => 9007199254740993n + BigInt(i)))
          expect(got[3]!.payload.tags).toEqual(["a", "3"])
          expect(got[3]!.payload.at).toEqual(new Date(3))
        }
        yield* Effect.all(stops)
      }))
  })
})
