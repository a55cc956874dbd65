import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import * as Admin from "../src/Admin.js"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import * as Retention from "../src/Retention.js"
import * as Triggers from "../src/Triggers.js"
import {
  databaseUrl,
  freshChannel,
  freshSchema,
  PgLive,
  query,
  rawClient,
  recordingConsumer,
  start,
  takeN,
  testOptions
} from "./utils.js"

/**
 * Functions a role could plant in a schema on a victim's search_path: each matches its
 * arguments better than pg_catalog's own, so an unqualified call in an unpinned function
 * would run it (with the rights of whoever called pgwatch). Each records that it ran.
 */
const plants = (evil: string, table: string) => {
  const record = (name: string) => `INSERT INTO ${evil}.calls VALUES ('${name}');`
  const scalar = (name: string, args: string, returns: string, call: string) =>
    `CREATE FUNCTION ${evil}.${name}(${args}) RETURNS ${returns} LANGUAGE plpgsql AS $$
     BEGIN ${record(`${name}(${args})`)} RETURN ${call}; END $$`
  const set = (name: string, args: string, returns: string, call: string) =>
    `CREATE FUNCTION ${evil}.${name}(${args}) RETURNS SETOF ${returns} LANGUAGE plpgsql AS $$
     BEGIN ${record(`${name}(${args})`)} RETURN QUERY SELECT ${call}; END $$`
  return [
    `CREATE SCHEMA ${evil}`,
    `CREATE TABLE ${evil}.calls (fn text)`,
    scalar("format", "f text, a text, b regclass", "text", "pg_catalog.format(f, a, b)"),
    scalar("format", "f text, a text, b regclass, c text, d text", "text", "pg_catalog.format(f, a, b, c, d)"),
    set("unnest", "a text[]", "text", "pg_catalog.unnest(a)"),
    set("unnest", "a jsonb[]", "jsonb", "pg_catalog.unnest(a)"),
    scalar("to_jsonb", `r ${table}`, "jsonb", "pg_catalog.to_jsonb(r)"),
    scalar("json_build_object", "a text, b integer, c text, d text", "json", "pg_catalog.json_build_object(a, b, c, d)"),
    scalar(
      "json_build_object",
      "a text, b integer, c text, d text, e text, f boolean",
      "json",
      "pg_catalog.json_build_object(a, b, c, d, e, f)"
    ),
    scalar(
      "jsonb_build_object",
      "a text, b text, c text, d text, e text, f text",
      "jsonb",
      "pg_catalog.jsonb_build_object(a, b, c, d, e, f)"
    ),
    `CREATE FUNCTION ${evil}.pg_advisory_xact_lock(k integer) RETURNS void LANGUAGE plpgsql AS $$
     BEGIN ${record("pg_advisory_xact_lock(k integer)")} PERFORM pg_catalog.pg_advisory_xact_lock(k); END $$`
  ]
}

describe("search_path", () => {
  it.live("functions planted in a schema first on the caller's search_path are never called", () =>
    Effect.gen(function*() {
      const schema = freshSchema()
      const evil = `${schema}_evil`
      const channel = freshChannel()
      const admin = yield* rawClient
      yield* Effect.addFinalizer(() =>
        query(admin, `DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${evil} CASCADE`).pipe(Effect.orDie)
      )
      // The table the trigger watches exists before the schema is migrated: the planted
      // to_jsonb takes its row type.
      yield* query(admin, `CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.orders (id int PRIMARY KEY, item text)`)
      for (const statement of plants(evil, `${schema}.orders`)) yield* query(admin, statement)

      // Every connection of the service (pool and listen connection) has the planted schema first.
      const url = new URL(databaseUrl)
      url.searchParams.set("options", `-c search_path=${evil},public`)
      const attacked = PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 4 })
      yield* Effect.gen(function*() {
        const { sql } = yield* PgWatch.PgWatch
        const [{ search_path }] = yield* sql<{ search_path: string }>`SHOW search_path`
        expect(search_path).toBe(`${evil},public`)

        yield* Triggers.add(`${schema}.orders`, { channel })
        const { consumer, received } = yield* recordingConsumer({ id: "search_path_c", channels: [channel] })
        const stop = yield* start(consumer)
        yield* PgWatch.notify(channel, { n: 1 })
        yield* PgWatch.notifyMany(channel, [{ n: 2 }, { n: 3 }])
        yield* sql`INSERT INTO ${sql(schema)}.orders VALUES (1, 'tea')`
        yield* sql`UPDATE ${sql(schema)}.orders SET item = 'coffee'`
        yield* sql`DELETE FROM ${sql(schema)}.orders`
        const delivered = yield* takeN(received, 6)
        expect(delivered.map((n) => (n.payload as { action?: string }).action ?? "notify")).toEqual([
          "notify",
          "notify",
          "notify",
          "INSERT",
          "UPDATE",
          "DELETE"
        ])
        yield* Admin.replay({ consumerId: "search_path_c", logIds: [delivered[0]!.id] })
        yield* takeN(received, 1)
        yield* stop
        yield* Admin.status()
        yield* Admin.deadLetters()
        yield* Retention.cleanup({ olderThan: "1 day" })
        expect(yield* Triggers.remove(`${schema}.orders`, { channel })).toBe(true)

        const calls = yield* sql<{ fn: string }>`SELECT fn FROM ${sql(evil)}.calls`
        expect(calls).toEqual([])
        // The plants work: an unqualified call of the session's own does reach one.
        yield* sql`SELECT unnest(${["x"]}::text[])`
        expect(yield* sql<{ fn: string }>`SELECT fn FROM ${sql(evil)}.calls`).toEqual([{ fn: "unnest(a text[])" }])
      }).pipe(
        Effect.provide(
          PgWatch.layer({ schema, migrate: true, ...testOptions }).pipe(Layer.provideMerge(attacked))
        )
      )
    }).pipe(Effect.scoped))

  it.live("every function pins its search_path (but inlined SQL set functions) and none is executable by PUBLIC", () =>
    Effect.gen(function*() {
      const schema = freshSchema()
      const sql = yield* PgClient.PgClient
      yield* Effect.addFinalizer(() => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).pipe(Effect.orDie))
      yield* Migrator.migrate({ schema })
      const functions = yield* sql<{ name: string; pinned: boolean; inlined: boolean; owner_only: boolean; public: boolean }>`
        SELECT p.oid::regprocedure::text AS name,
               coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false) AS pinned,
               l.lanname = 'sql' AND p.proretset AND NOT p.prosecdef AS inlined,
               NOT EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                            WHERE a.grantee <> p.proowner) AS owner_only,
               has_function_privilege('public', p.oid, 'EXECUTE') AS public
          FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
         WHERE p.pronamespace = ${schema}::regnamespace
         ORDER BY 1`
      expect(functions.length).toBeGreaterThan(10)
      // Its generic plan is costed on the whole log: JIT would compile it on every read of a big one.
      const [nextPage] = yield* sql<{ config: ReadonlyArray<string> }>`
        SELECT proconfig AS config FROM pg_proc WHERE pronamespace = ${schema}::regnamespace AND proname = 'next_page'`
      expect(nextPage!.config).toContain("jit=off")
      for (const fn of functions) {
        expect({ name: fn.name, safe: fn.pinned || (fn.inlined && fn.owner_only), public: fn.public })
          .toEqual({ name: fn.name, safe: true, public: false })
      }
    }).pipe(Effect.scoped, Effect.provide(PgLive)))
})
