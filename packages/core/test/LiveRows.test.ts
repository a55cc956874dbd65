// The producers' live-row NOTIFYs (sql/0009), read by a real LISTEN connection and checked with
// the reader's own decoder.
import { describe, expect, it, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Queue } from "effect"
import type * as Pg from "pg"
import * as LiveRow from "../src/internal/liveRow.js"
import * as SqlFiles from "../src/internal/sqlFiles.js"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import * as Roles from "../src/Roles.js"
import { type LoginRole, loginRole, schemaWithRoles, sqlState } from "./roleUtils.js"
import { dropSchemaFinally, freshChannel, freshSchema, PgLive, query, rawClient, testOptions } from "./utils.js"

const schema = freshSchema()
const s = `"${schema}"`

/** A migrated schema of this file's own, dropped at its end. */
const Migrated = Layer.scopedDiscard(Effect.gen(function*() {
  yield* dropSchemaFinally(schema)
  yield* Migrator.migrate({ schema })
})).pipe(Layer.provideMerge(PgLive))

/** The installation's key, as the consumer role learns it. */
const liveKey = (client: Pg.Client, name = schema) =>
  Effect.map(query(client, `SELECT "${name}".live_key() AS key`), (r) => Buffer.from(r.rows[0].key as string, "hex"))

/**
 * A LISTEN connection that registers as a waiting consumer on the channels it listens to, and
 * collects what arrives.
 */
const listener = (name = schema) =>
  Effect.gen(function*() {
  const client = yield* rawClient
  const arrived = yield* Queue.unbounded<Pg.Notification>()
  client.on("notification", (n) => Queue.unsafeOffer(arrived, n))
  const key = yield* liveKey(client, name)
  let markers = 0
  // What arrived on other channels while one was drained.
  const pending = new Map<string, Array<string>>()
  return {
    key,
    listen: (channel: string, options: { readonly payloads?: boolean; readonly id?: string } = {}) =>
      Effect.all([
        query(client, `LISTEN "${channel}"`),
        query(
          client,
          `INSERT INTO "${name}".waiting (channel, consumer_id, backend_pid, payloads) VALUES ($1, $2, pg_backend_pid(), $3)`,
          [channel, options.id ?? "test", options.payloads ?? true]
        )
      ], { discard: true }),
    /** Every NOTIFY on `channel` committed so far: they arrive in commit order, so up to a marker sent now. */
    drain: (channel: string) =>
      Effect.gen(function*() {
        const marker = `marker ${++markers}`
        yield* query(client, "SELECT pg_notify($1, $2)", [channel, marker])
        for (;;) {
          const n = yield* Queue.take(arrived)
          const got = pending.get(n.channel) ?? []
          pending.set(n.channel, got)
          if (n.channel === channel && n.payload === marker) {
            pending.delete(channel)
            return got
          }
          got.push(n.payload ?? "")
        }
      }).pipe(Effect.timeout("20 seconds"), Effect.orDie)
  }
  })

const decodeAll = (channel: string, payloads: ReadonlyArray<string>, key: Uint8Array) =>
  payloads.map((p) => LiveRow.decode(channel, p, schema, key))

/** The log's own record of rows, to compare with what the NOTIFYs say. */
const logged = (client: Pg.Client, ids: ReadonlyArray<string>) =>
  Effect.map(
    query(
      client,
      `SELECT id::text, xid::text, (extract(epoch FROM created_at) * 1000000)::bigint::text AS us, payload::text AS body
         FROM ${s}.notification_log WHERE id = ANY($1::bigint[]) ORDER BY id`,
      [ids]
    ),
    (r) =>
      (r.rows as Array<{ id: string; xid: string; us: string; body: string }>).map((row) => ({
        _tag: "Row",
        id: BigInt(row.id),
        xid: row.xid,
        createdAt: new Date(Number(BigInt(row.us) / 1000n)),
        body: row.body
      }))
  )

describe("live rows (sql/0009)", () => {
  layer(Migrated, { excludeTestServices: true })((it) => {
    it.scoped("smart_notify, smart_notify_many and a trigger send one signed row each, that the reader's decoder accepts", () =>
      Effect.gen(function*() {
        const { key, listen, drain } = yield* listener()
        const writer = yield* rawClient
        const channel = freshChannel()
        yield* listen(channel)

        const one = yield* query(writer, `SELECT ${s}.smart_notify($1, '{"a": "é:1"}')::text AS id`, [channel])
        const many = yield* query(
          writer,
          `SELECT id::text FROM ${s}.smart_notify_many($1, ARRAY['[1, 2]', 'null', '"x"']::jsonb[]) AS id`,
          [channel]
        )
        const table = `orders_${channel.slice(-8)}`
        yield* query(writer, `CREATE TABLE ${s}.${table} (id int PRIMARY KEY, item text)`)
        yield* query(writer, `SELECT ${s}.add_data_change_trigger('${schema}.${table}'::regclass, $1)`, [channel])
        yield* query(writer, `INSERT INTO ${s}.${table} VALUES (7, 'tea')`)
        const fromTrigger = yield* query(writer, `SELECT max(id)::text AS id FROM ${s}.notification_log`)

        const ids = [one.rows[0].id, ...many.rows.map((r) => r.id), fromTrigger.rows[0].id] as Array<string>
        const decoded = decodeAll(channel, yield* drain(channel), key)
        expect(decoded).toEqual(yield* logged(writer, ids))
        expect(JSON.parse((decoded[4] as { body: string }).body)).toMatchObject({ table, action: "INSERT", id: 7 })
      }))

    it.scoped("a forged NOTIFY is rejected: wrong key, changed body, or a real one re-sent on another channel", () =>
      Effect.gen(function*() {
        const { key, listen, drain } = yield* listener()
        const writer = yield* rawClient
        const channel = freshChannel()
        const other = freshChannel()
        yield* listen(channel)
        yield* listen(other)
        yield* query(writer, `SELECT ${s}.smart_notify($1, '{"amount": 10}')`, [channel])
        const [genuine] = yield* drain(channel)
        expect(LiveRow.decode(channel, genuine!, schema, key)._tag).toBe("Row")

        // Any role may NOTIFY any channel: these arrive as a reader would see them.
        const changed = genuine!.replace('{"amount": 10}', '{"amount": 99}')
        expect(changed).not.toBe(genuine)
        yield* query(writer, "SELECT pg_notify($1, $2), pg_notify($3, $2)", [channel, changed, other])
        yield* query(writer, "SELECT pg_notify($1, $2)", [other, genuine])
        const [sentChanged] = yield* drain(channel)
        const [otherChanged, replayed] = yield* drain(other)
        const invalid = { _tag: "Invalid", reason: "a live-row NOTIFY whose signature does not verify" }
        expect(LiveRow.decode(channel, sentChanged!, schema, key)).toEqual(invalid)
        expect(LiveRow.decode(other, otherChanged!, schema, key)).toEqual(invalid)
        expect(LiveRow.decode(other, replayed!, schema, key)).toEqual(invalid)
        expect(LiveRow.decode(channel, genuine!, schema, Buffer.alloc(32, 7))).toEqual(invalid)
      }))

    it.scoped("a row whose NOTIFY would pass 7999 bytes goes without its payload; bytes, not characters, count", () =>
      Effect.gen(function*() {
        const { key, listen, drain } = yield* listener()
        const writer = yield* rawClient
        const channel = freshChannel()
        yield* listen(channel)
        yield* query(writer, "BEGIN")
        const first = yield* query(
          writer,
          `SELECT ${s}.smart_notify($1, '"a"')::text AS id, pg_current_xact_id()::text AS xid,
                  (extract(epoch FROM now()) * 1000000)::bigint::text AS us`,
          [channel]
        )
        const { id, us, xid } = first.rows[0] as { id: string; xid: string; us: string }
        // A JSON string of 'é' (2 bytes) padded with 'a' to make the whole NOTIFY `bytes` long.
        const sized = (rowId: bigint, bytes: number) => {
          const fixed = Buffer.byteLength(`${LiveRow.PREFIX}${schema}:r:${rowId}:${xid}:${us}:`) + 64 + 1 + 2
          const room = bytes - fixed
          return JSON.stringify("é".repeat(Math.floor(room / 2)) + "a".repeat(room % 2))
        }
        // Through both producers: smart_notify_many makes its NOTIFYs in one statement.
        const next = BigInt(id) + 1n
        const fits = [sized(next, 7999), sized(next + 2n, 7999)]
        const over = [sized(next + 1n, 8000), sized(next + 3n, 8000)]
        const many = yield* query(writer, `SELECT id::text FROM ${s}.smart_notify_many($1, ARRAY[$2, $3]::jsonb[]) AS id`, [
          channel,
          fits[0],
          over[0]
        ])
        const one = yield* query(writer, `SELECT ${s}.smart_notify($1, $2)::text AS a, ${s}.smart_notify($1, $3)::text AS b`, [
          channel,
          fits[1],
          over[1]
        ])
        yield* query(writer, "COMMIT")
        // The sizes were computed for the ids that follow: nothing else writes to this schema now.
        expect([...many.rows.map((r) => r.id), one.rows[0].a, one.rows[0].b]).toEqual([0n, 1n, 2n, 3n].map((n) => String(next + n)))

        const [, ...sent] = yield* drain(channel)
        expect(sent.map((p) => Buffer.byteLength(p))).toEqual([7999, expect.any(Number), 7999, expect.any(Number)])
        expect(decodeAll(channel, sent, key)).toMatchObject([
          { _tag: "Row", id: next, body: fits[0] },
          { _tag: "Row", id: next + 1n, body: undefined },
          { _tag: "Row", id: next + 2n, body: fits[1] },
          { _tag: "Row", id: next + 3n, body: undefined }
        ])

        // A payload far past the limit (stored compressed, never turned into text) too.
        const [huge] = (yield* query(writer, `SELECT ${s}.smart_notify($1, to_jsonb(repeat('x', 1000000)))::text AS id`, [
          channel
        ])).rows as Array<{ id: string }>
        const [hugeRow] = yield* drain(channel)
        expect(LiveRow.decode(channel, hugeRow!, schema, key)).toMatchObject({ id: BigInt(huge!.id), body: undefined })
      }))

    it.scoped("a channel with a confidential waiter gets ids only", () =>
      Effect.gen(function*() {
        const { key, listen, drain } = yield* listener()
        const writer = yield* rawClient
        const channel = freshChannel()
        yield* listen(channel, { id: "open" })
        yield* query(writer, `SELECT ${s}.smart_notify($1, '{"open": true}')`, [channel])
        expect(decodeAll(channel, yield* drain(channel), key)).toMatchObject([{ _tag: "Row", body: '{"open": true}' }])

        yield* query(
          writer,
          `INSERT INTO ${s}.waiting (channel, consumer_id, backend_pid, payloads) VALUES ($1, 'secret', pg_backend_pid(), false)`,
          [channel]
        )
        yield* query(writer, `SELECT ${s}.smart_notify($1, '{"salary": 1}')`, [channel])
        yield* query(writer, `SELECT ${s}.smart_notify_many($1, ARRAY['{"salary": 2}']::jsonb[])`, [channel])
        const rows = yield* drain(channel)
        expect(rows.some((p) => p.includes("salary"))).toBe(false)
        expect(decodeAll(channel, rows, key)).toMatchObject([{ _tag: "Row", body: undefined }, { _tag: "Row", body: undefined }])
      }))

    it.scoped("a 10,000-row transaction sends 100 rows, then one \"read xid\" per channel", () =>
      Effect.gen(function*() {
        const { key, listen, drain } = yield* listener()
        const writer = yield* rawClient
        const [a, b, c] = [freshChannel(), freshChannel(), freshChannel()]
        yield* Effect.forEach([a, b, c], (channel) => listen(channel), { discard: true })

        const batch = (channel: string, how: string) =>
          Effect.gen(function*() {
            yield* query(writer, "BEGIN")
            yield* query(writer, how, [channel])
            const { xid } = (yield* query(writer, "SELECT pg_current_xact_id()::text AS xid")).rows[0] as { xid: string }
            yield* query(writer, "COMMIT")
            const decoded = decodeAll(channel, yield* drain(channel), key)
            const ids = yield* query(writer, `SELECT l.id::text AS id FROM ${s}.notification_log l WHERE l.channel = $1 ORDER BY l.id LIMIT 100`, [
              channel
            ])
            expect(decoded).toHaveLength(101)
            expect(decoded.slice(0, 100).map((d) => d._tag === "Row" && String(d.id))).toEqual(ids.rows.map((r) => r.id))
            expect(decoded[100]).toEqual({ _tag: "ReadXid", xid })
          })
        yield* batch(a, `SELECT count(*) FROM ${s}.smart_notify_many($1, ARRAY(SELECT to_jsonb(g) FROM generate_series(1, 10000) g))`)
        yield* batch(b, `SELECT count(${s}.smart_notify($1, to_jsonb(g))) FROM generate_series(1, 10000) g`)

        // The budget is the transaction's, whatever the channels: 60 rows on one, then 40 and a
        // "read xid" on the other.
        yield* query(
          writer,
          `BEGIN;
           SELECT count(${s}.smart_notify('${a}', to_jsonb(g))) FROM generate_series(1, 60) g;
           SELECT count(*) FROM ${s}.smart_notify_many('${c}', ARRAY(SELECT to_jsonb(g) FROM generate_series(1, 60) g));
           COMMIT`
        )
        expect(decodeAll(a, yield* drain(a), key).map((d) => d._tag)).toEqual(Array(60).fill("Row"))
        expect(decodeAll(c, yield* drain(c), key).map((d) => d._tag)).toEqual([...Array(40).fill("Row"), "ReadXid"])
      }))

    it.scoped("past the budget, each schema's \"read xid\" goes on each channel", () =>
      Effect.gen(function*() {
        const second = freshSchema()
        yield* dropSchemaFinally(second)
        yield* Migrator.migrate({ schema: second })
        const first = yield* listener()
        const other = yield* listener(second)
        const writer = yield* rawClient
        const channel = freshChannel()
        yield* first.listen(channel)
        yield* other.listen(channel)
        yield* query(writer, "BEGIN")
        yield* query(writer, `SELECT count(${s}.smart_notify($1, to_jsonb(g))) FROM generate_series(1, 101) g`, [channel])
        yield* query(writer, `SELECT "${second}".smart_notify($1, '2'), ${s}.smart_notify($1, '3')`, [channel])
        const { xid } = (yield* query(writer, "SELECT pg_current_xact_id()::text AS xid")).rows[0] as { xid: string }
        yield* query(writer, "COMMIT")
        const [seen] = yield* Effect.all([first.drain(channel), other.drain(channel)])
        expect(decodeAll(channel, seen, first.key).map((d) => d._tag)).toEqual([...Array(100).fill("Row"), "ReadXid", "OtherSchema"])
        expect(seen.map((p) => LiveRow.decode(channel, p, second, other.key)).slice(100)).toEqual([
          { _tag: "OtherSchema" },
          { _tag: "ReadXid", xid }
        ])
      }))

    it.scoped("an aborted transaction sends nothing; a rolled-back savepoint gives its NOTIFYs and its budget back", () =>
      Effect.gen(function*() {
        const { key, listen, drain } = yield* listener()
        const writer = yield* rawClient
        const channel = freshChannel()
        yield* listen(channel)
        yield* query(writer, `BEGIN; SELECT ${s}.smart_notify('${channel}', '"aborted"'); ROLLBACK`)
        expect(yield* drain(channel)).toEqual([])

        yield* query(
          writer,
          `BEGIN;
           SAVEPOINT s;
           SELECT count(${s}.smart_notify('${channel}', to_jsonb(g))) FROM generate_series(1, 150) g;
           ROLLBACK TO SAVEPOINT s;
           SELECT ${s}.smart_notify('${channel}', '"kept"');
           COMMIT`
        )
        expect(decodeAll(channel, yield* drain(channel), key)).toMatchObject([{ _tag: "Row", body: '"kept"' }])
      }))

    it.scoped("nobody waiting: no NOTIFY at all", () =>
      Effect.gen(function*() {
        const { drain, listen } = yield* listener()
        const writer = yield* rawClient
        const channel = freshChannel()
        const unregistered = freshChannel()
        yield* listen(channel)
        yield* query(writer, `LISTEN "${unregistered}"`)
        yield* query(writer, `SELECT ${s}.smart_notify($1, '1'), ${s}.smart_notify_many($1, ARRAY['2']::jsonb[])`, [unregistered])
        const seen = yield* Queue.unbounded<string>()
        writer.on("notification", (n) => Queue.unsafeOffer(seen, n.payload ?? ""))
        yield* query(writer, "SELECT pg_notify($1, 'end')", [unregistered])
        expect(yield* Queue.take(seen)).toBe("end")
        expect(yield* drain(channel)).toEqual([])
      }))
  })
})

describe("upgrade", () => {
  it.live("an installation at 0008 with consumers, positions and waiters keeps them at 0009", () =>
    Effect.gen(function*() {
      const schema = freshSchema()
      yield* dropSchemaFinally(schema)
      const sql = yield* PgClient.PgClient
      // Migrated as the migrator did before this version.
      const files = yield* SqlFiles.load(schema)
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`CREATE SCHEMA ${sql(schema)}`
        yield* sql`CREATE TABLE ${sql(schema)}.schema_migration (
          version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
        for (const file of files.filter((f) => f.version <= 8)) {
          yield* sql.unsafe(file.text)
          yield* sql`INSERT INTO ${sql(schema)}.schema_migration (version, name) VALUES (${file.version}, ${file.name})`
        }
      }))
      const [id] = yield* sql<{ id: string }>`SELECT ${sql(schema)}.smart_notify('orders', '{"n": 1}')::text AS id`
      yield* sql`INSERT INTO ${sql(schema)}.consumer (id, channels, done, batch, after_xid, after_id, handled, delivery_mode)
                 VALUES ('billing', '{orders}', pg_current_snapshot(), pg_current_snapshot(), '7', ${id!.id}, 41, 'wake-ups'),
                        ('audit', '{orders,users}', '10:20:12,15', NULL, NULL, NULL, 0, NULL)`
      yield* sql`INSERT INTO ${sql(schema)}.dead_letter (consumer_id, log_id, reason, error, attempts)
                 VALUES ('billing', ${id!.id}, 'permanent', 'no', 3)`
      yield* sql`INSERT INTO ${sql(schema)}.waiting (channel, consumer_id, backend_pid) VALUES ('orders', 'billing', pg_backend_pid())`
      const state = sql<{ consumers: string; dead: string; waiting: string }>`
        SELECT (SELECT json_agg(c ORDER BY c.id)::text FROM ${sql(schema)}.consumer c) AS consumers,
               (SELECT json_agg(d)::text FROM ${sql(schema)}.dead_letter d) AS dead,
               (SELECT json_agg(json_build_object('channel', w.channel, 'consumer', w.consumer_id))::text
                  FROM ${sql(schema)}.waiting w) AS waiting`
      const before = yield* state

      expect((yield* Migrator.migrate({ schema })).map((m) => m.version)).toContain(9)
      expect(yield* state).toEqual(before)
      expect(yield* sql`SELECT payloads FROM ${sql(schema)}.waiting`).toEqual([{ payloads: true }])
      expect(yield* sql`SELECT ${sql(schema)}.live_key() ~ '^[0-9a-f]{64}$' AS ok`).toEqual([{ ok: true }])
    }).pipe(Effect.scoped, Effect.provide(PgLive)))
})

describe("the live key", () => {
  it.live("only the owner and the consumer role can read it; producers sign with it all the same", () =>
    Effect.gen(function*() {
      const schema = yield* schemaWithRoles
      yield* Migrator.migrate({ schema })
      const sql = yield* PgClient.PgClient
      const [stored] = yield* sql<{ key: string; ipad: string; opad: string }>`
        SELECT encode(key, 'hex') AS key, encode(ipad, 'hex') AS ipad, encode(opad, 'hex') AS opad
          FROM ${sql(schema)}.live_key`
      expect(stored!.key).toMatch(/^[0-9a-f]{64}$/)
      const pad = (byte: number) =>
        Buffer.from(Buffer.concat([Buffer.from(stored!.key, "hex"), Buffer.alloc(32)]).map((b) => b ^ byte)).toString("hex")
      expect(stored).toMatchObject({ ipad: pad(0x36), opad: pad(0x5c) })

      const owner = PgWatch.layer({ schema, ...testOptions }).pipe(Layer.provideMerge(PgLive))
      const consumer = yield* loginRole("consumer")
      const producer = yield* loginRole("producer")
      const operator = yield* loginRole("operator")
      yield* Effect.forEach(
        [[consumer, "consumer"], [producer, "producer"], [operator, "operator"]] as const,
        ([role, kind]) => Roles.grant({ role: role.name, kind }).pipe(Effect.provide(owner)),
        { discard: true }
      )
      const failure = (role: LoginRole, statement: string) =>
        Effect.flatMap(PgClient.PgClient, (sql) => Effect.flip(sql.unsafe(statement))).pipe(
          Effect.map(sqlState),
          Effect.provide(role.client)
        )
      const key = yield* Effect.flatMap(PgClient.PgClient, (sql) => sql<{ key: string }>`SELECT ${sql(schema)}.live_key() AS key`)
        .pipe(Effect.provide(consumer.client))
      expect(key).toEqual([{ key: stored!.key }])
      for (const role of [producer, operator]) {
        expect(yield* failure(role, `SELECT "${schema}".live_key()`)).toBe("42501")
      }
      for (const role of [consumer, producer, operator]) {
        expect(yield* failure(role, `SELECT * FROM "${schema}".live_key`)).toBe("42501")
      }

      const { drain, key: listenKey, listen } = yield* listener(schema)
      const channel = freshChannel()
      yield* listen(channel)
      const [{ id }] = yield* Effect.flatMap(PgClient.PgClient, (sql) =>
        sql<{ id: string }>`SELECT ${sql(schema)}.smart_notify(${channel}, '"from a producer"')::text AS id`).pipe(
          Effect.provide(producer.client)
        )
      expect(LiveRow.decode(channel, (yield* drain(channel))[0]!, schema, listenKey))
        .toMatchObject({ _tag: "Row", id: BigInt(id!), body: '"from a producer"' })
    }).pipe(Effect.scoped, Effect.provide(PgLive)))
})
