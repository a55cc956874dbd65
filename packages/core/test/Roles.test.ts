import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Ref } from "effect"
import * as NodeFs from "node:fs"
import * as Admin from "../src/Admin.js"
import * as Consumer from "../src/Consumer.js"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import * as Retention from "../src/Retention.js"
import * as Roles from "../src/Roles.js"
import * as Triggers from "../src/Triggers.js"
import { loginRole, schemaWithRoles, sqlState } from "./roleUtils.js"
import { freshChannel, PgLive, recordingConsumer, start, takeN, testOptions } from "./utils.js"

/** A migrated schema, dropped with its group roles when the scope closes; the service as its owner. */
const ownedSchema = Effect.gen(function*() {
  const schema = yield* schemaWithRoles
  yield* Migrator.migrate({ schema })
  const owner = PgWatch.layer({ schema, ...testOptions }).pipe(Layer.provideMerge(PgLive))
  return { schema, owner }
})

/** Runs `effect` and returns the SQLSTATE it failed with. */
const denied = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.map(Effect.flip(effect), sqlState)

describe("roles", () => {
  it.live("producer: stores notifications only through pgwatch's functions; cannot forge a row or read the log", () =>
    Effect.gen(function*() {
      const { schema, owner } = yield* ownedSchema
      const producer = yield* loginRole("producer")
      yield* Roles.grant({ role: producer.name, kind: "producer" }).pipe(Effect.provide(owner))
      const channel = freshChannel()
      yield* Effect.gen(function*() {
        const { sql } = yield* PgWatch.PgWatch
        const id = yield* PgWatch.notify(channel, { n: 1 })
        expect(yield* PgWatch.notifyMany(channel, [{ n: 2 }])).toEqual([id + 1n])
        // No INSERT: neither a forged xid or created_at, nor an id taken ahead of the sequence.
        expect(yield* denied(sql`INSERT INTO ${sql(schema)}.notification_log (channel, payload, xid, created_at)
                                 VALUES (${channel}, '{}', '1', now() - interval '1 day')`)).toBe("42501")
        expect(yield* denied(sql`INSERT INTO ${sql(schema)}.notification_log (id, channel, payload)
                                 OVERRIDING SYSTEM VALUE VALUES (${String(id + 100n)}, ${channel}, '{}')`)).toBe("42501")
        expect(yield* denied(sql`SELECT * FROM ${sql(schema)}.notification_log`)).toBe("42501")
        expect(yield* denied(sql`SELECT * FROM ${sql(schema)}.next_page(${[channel]}, '1:1:', NULL, '0', 0, 10)`)).toBe("42501")
        expect(yield* denied(sql`SELECT ${sql(schema)}.wake(${channel})`)).toBe("42501")
      }).pipe(Effect.provide(producer.watch(schema)))
      const rows = yield* Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        return yield* sql<{ id: string; forged: boolean }>`
          SELECT id::text, created_at < now() - interval '1 hour' AS forged
            FROM ${sql(schema)}.notification_log ORDER BY id`
      })
      expect(rows).toEqual([{ id: expect.any(String), forged: false }, { id: expect.any(String), forged: false }])
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("consumer: runs a consumer end to end, a dead letter and a redelivery included; cannot produce", () =>
    Effect.gen(function*() {
      const { schema, owner } = yield* ownedSchema
      const consumerRole = yield* loginRole("consumer")
      const operatorRole = yield* loginRole("operator")
      yield* Roles.grant({ role: consumerRole.name, kind: "consumer" }).pipe(Effect.provide(owner))
      yield* Roles.grant({ role: operatorRole.name, kind: "operator" }).pipe(Effect.provide(owner))
      const channel = freshChannel()
      const [id1, id2] = yield* PgWatch.notifyMany(channel, [{ n: 1 }, { n: 2, fail: true }]).pipe(Effect.provide(owner))
      yield* Effect.gen(function*() {
        const refusing = yield* Ref.make(true)
        const { consumer, received } = yield* recordingConsumer({
          id: "roles_consumer",
          channels: [channel],
          handle: (n) =>
            Effect.gen(function*() {
              if ((n.payload as { fail?: boolean }).fail === true && (yield* Ref.getAndSet(refusing, false))) {
                return yield* new Consumer.Permanent({ message: "refused on purpose" })
              }
            })
        })
        const stop = yield* start(consumer)
        expect((yield* takeN(received, 1)).map((n) => n.id)).toEqual([id1])
        const id3 = yield* PgWatch.notify(channel, { n: 3 }).pipe(Effect.provide(owner))
        expect((yield* takeN(received, 1)).map((n) => n.id)).toEqual([id3])
        // The dead letter is recorded under the consumer's role; the operator re-drives it.
        const dead = yield* Admin.deadLetters().pipe(Effect.provide(operatorRole.watch(schema)))
        expect(dead.map((d) => [d.consumerId, d.logId])).toEqual([["roles_consumer", id2]])
        yield* Admin.redrive({ consumerId: "roles_consumer" }).pipe(Effect.provide(operatorRole.watch(schema)))
        expect((yield* takeN(received, 1)).map((n) => [n.id, n.isReplay])).toEqual([[id2, true]])
        yield* stop

        const { sql } = yield* PgWatch.PgWatch
        expect(yield* denied(PgWatch.notify(channel, { n: 4 }))).toBe("42501")
        expect(yield* denied(sql`INSERT INTO ${sql(schema)}.notification_log (channel, payload) VALUES (${channel}, '{}')`))
          .toBe("42501")
        expect(yield* denied(sql`DELETE FROM ${sql(schema)}.notification_log`)).toBe("42501")
      }).pipe(Effect.provide(consumerRole.watch(schema)))
      const [status] = yield* Admin.status().pipe(Effect.provide(owner))
      expect(status).toMatchObject({ id: "roles_consumer", pending: 0, deadLetters: 0, redeliveries: 0, handled: 3 })
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("operator: status, failures, redrive, replay, cleanup, triggers; cannot produce or move a consumer", () =>
    Effect.gen(function*() {
      const { schema, owner } = yield* ownedSchema
      const operatorRole = yield* loginRole("operator")
      yield* Roles.grant({ role: operatorRole.name, kind: "operator" }).pipe(Effect.provide(owner))
      const channel = freshChannel()
      const { consumer, received } = yield* recordingConsumer({
        id: "roles_watched",
        channels: [channel],
        handle: (n) => (n.payload as { fail?: boolean }).fail === true ? new Consumer.Permanent({ message: "no" }) : Effect.void
      })
      const [id1, id2] = yield* Effect.gen(function*() {
        const ids = yield* PgWatch.notifyMany(channel, [{ n: 1 }, { fail: true }])
        const stop = yield* start(consumer)
        yield* takeN(received, 1)
        yield* stop
        const sql = yield* PgClient.PgClient
        yield* sql`CREATE TABLE ${sql(schema)}.orders (id int PRIMARY KEY)`
        // PostgreSQL lets only a table's owner drop its triggers.
        yield* sql.unsafe(`ALTER TABLE "${schema}".orders OWNER TO "${operatorRole.name}"`)
        return ids
      }).pipe(Effect.provide(owner))

      yield* Effect.gen(function*() {
        const { sql } = yield* PgWatch.PgWatch
        const [status] = yield* Admin.status()
        expect(status).toMatchObject({ id: "roles_watched", handled: 1, deadLetters: 1 })
        expect((yield* Admin.deadLetters()).map((d) => d.logId)).toEqual([id2])
        expect(yield* Admin.redrive({ logIds: [id2!] })).toEqual([{ consumerId: "roles_watched", logId: id2 }])
        expect(yield* Admin.replay({ consumerId: "roles_watched", logIds: [id1!] })).toEqual([id1])
        expect(yield* Retention.cleanup({ olderThan: 0, force: true })).toEqual({ deleted: 2, kept: 0 })
        expect(yield* Triggers.add(`${schema}.orders`, { channel })).toMatchObject({ trigger: `pgwatch_${channel}` })
        expect((yield* Triggers.list()).map((t) => t.channel)).toEqual([channel])
        expect(yield* Triggers.remove(`${schema}.orders`, { channel })).toBe(true)

        expect(yield* denied(PgWatch.notify(channel, {}))).toBe("42501")
        expect(yield* denied(sql`UPDATE ${sql(schema)}.consumer SET done = pg_current_snapshot()`)).toBe("42501")
        expect(yield* denied(sql`INSERT INTO ${sql(schema)}.dead_letter (consumer_id, log_id, reason, error, attempts)
                                 VALUES ('roles_watched', 1, 'x', 'x', 1)`)).toBe("42501")
      }).pipe(Effect.provide(operatorRole.watch(schema)))
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("writers of a triggered table need no pgwatch grant", () =>
    Effect.gen(function*() {
      const { schema, owner } = yield* ownedSchema
      const writer = yield* loginRole("writer")
      const sql = yield* PgClient.PgClient
      yield* sql`CREATE TABLE ${sql(schema)}.orders (id int PRIMARY KEY, item text)`
      yield* sql.unsafe(`GRANT USAGE ON SCHEMA "${schema}" TO "${writer.name}";
                         GRANT SELECT, INSERT, UPDATE, DELETE ON "${schema}".orders TO "${writer.name}"`)
      yield* Triggers.add(`${schema}.orders`).pipe(Effect.provide(owner))
      yield* Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        yield* sql`INSERT INTO ${sql(schema)}.orders VALUES (1, 'tea')`
        yield* sql`UPDATE ${sql(schema)}.orders SET item = 'coffee'`
        yield* sql`DELETE FROM ${sql(schema)}.orders`
        expect(yield* denied(sql`SELECT * FROM ${sql(schema)}.notification_log`)).toBe("42501")
      }).pipe(Effect.provide(writer.client))
      const logged = yield* sql<{ action: string }>`
        SELECT payload->>'action' AS action FROM ${sql(schema)}.notification_log ORDER BY id`
      expect(logged.map((row) => row.action)).toEqual(["INSERT", "UPDATE", "DELETE"])
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("grant: again is harmless; an unknown role or a non-owner is told what to do", () =>
    Effect.gen(function*() {
      const { schema, owner } = yield* ownedSchema
      const app = yield* loginRole("app")
      const first = yield* Roles.grant({ role: app.name, kind: "consumer" }).pipe(Effect.provide(owner))
      expect(first).toEqual({ group: `${schema}_consumer`, createdGroup: true, role: app.name })
      const again = yield* Roles.grant({ role: app.name, kind: "consumer" }).pipe(Effect.provide(owner))
      expect(again.createdGroup).toBe(false)

      const unknown = yield* Effect.flip(Roles.grant({ role: "no_such_role_x", kind: "producer" }).pipe(Effect.provide(owner)))
      expect(unknown).toMatchObject({ reason: "Config" })
      expect(unknown.message).toContain(`role "no_such_role_x" does not exist`)
      // A consumer may not hand out privileges.
      const self = yield* Effect.flip(Roles.grant({ role: app.name, kind: "operator" }).pipe(Effect.provide(app.watch(schema))))
      expect(self).toMatchObject({ reason: "Permission" })
      expect(Roles.statements("pgwatch", "producer")).toContain(
        `GRANT EXECUTE ON FUNCTION "pgwatch".smart_notify TO "pgwatch_producer"`
      )
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it("the README lists exactly the statements grant runs", () => {
    const readme = NodeFs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
    for (const kind of Roles.kinds) {
      const listed = readme.split("\n").filter((line) => line.endsWith(`TO "pgwatch_${kind}";`)).map((line) => line.slice(0, -1))
      expect(listed).toEqual(Roles.statements("pgwatch", kind))
    }
  })
})
