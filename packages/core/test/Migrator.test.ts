import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer } from "effect"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import { migrationNames } from "../../../test-support/migrations.js"
import * as Roles from "../src/Roles.js"
import { loginRole, schemaWithRoles } from "./roleUtils.js"
import { dropSchemaFinally, freshSchema, PgLive } from "./utils.js"

describe("migrator", () => {
  it.live("applies every file once, is safe to run again and from two processes at once", () =>
    Effect.gen(function*() {
      const schema = freshSchema()
      yield* dropSchemaFinally(schema)
      const planned = yield* Migrator.migrate({ schema, dryRun: true })
      expect(planned.map((m) => m.version)).toEqual(migrationNames.map((name) => Number(name.slice(0, 4))))
      expect(planned[0]!.sql).toContain(`"${schema}".notification_log`)
      const sql = yield* PgClient.PgClient
      const [{ exists }] = yield* sql<{ exists: boolean }>`SELECT to_regnamespace(${schema}) IS NOT NULL AS exists`
      expect(exists).toBe(false)

      const [first, second] = yield* Effect.all([Migrator.migrate({ schema }), Migrator.migrate({ schema })], {
        concurrency: 2
      })
      expect([first.length, second.length].sort()).toEqual([0, migrationNames.length])
      expect(yield* Migrator.migrate({ schema })).toEqual([])
      expect(yield* Migrator.pending({ schema })).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("a service on an unmigrated schema says to run `pgwatch migrate`", () =>
    Effect.gen(function*() {
      const exit = yield* Layer.build(PgWatch.layer({ schema: freshSchema() })).pipe(Effect.scoped, Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(Layer.build(PgWatch.layer({ schema: freshSchema() })).pipe(Effect.scoped))
      expect(error).toMatchObject({ reason: "NotMigrated" })
      expect(error.message).toContain("pgwatch migrate")
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("refuses a schema name it cannot render safely", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Migrator.migrate({ schema: "x\"; DROP TABLE y; --" }))
      expect(error).toMatchObject({ reason: "Config" })
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("starting the service clears waiting registrations left by dead processes", () =>
    Effect.gen(function*() {
      const schema = freshSchema()
      yield* dropSchemaFinally(schema)
      yield* Migrator.migrate({ schema })
      const sql = yield* PgClient.PgClient
      yield* sql`INSERT INTO ${sql(schema)}.waiting (channel, consumer_id, backend_pid)
                 VALUES ('orders', 'crashed', 2147483647), ('orders', 'alive', pg_backend_pid())`
      yield* Layer.build(PgWatch.layer({ schema })).pipe(Effect.scoped)
      const left = yield* sql<{ consumer_id: string }>`SELECT consumer_id FROM ${sql(schema)}.waiting`
      expect(left.map((r) => r.consumer_id)).toEqual(["alive"])
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("a role without CREATE on the database: the service starts with migrate: true when nothing is pending", () =>
    Effect.gen(function*() {
      const schema = yield* schemaWithRoles
      const sql = yield* PgClient.PgClient
      const app = yield* loginRole("app")
      const [{ owner }] = yield* sql<{ owner: string }>`SELECT current_user AS owner`
      yield* Migrator.migrate({ schema })
      yield* Roles.grant({ role: app.name, kind: "consumer" }).pipe(
        Effect.provide(PgWatch.layer({ schema }).pipe(Layer.provide(PgLive)))
      )
      yield* Layer.build(app.watch(schema, { migrate: true })).pipe(Effect.scoped)

      // Something pending: the app's role is told who may apply it.
      const [last] = yield* sql<{ version: number }>`
        DELETE FROM ${sql(schema)}.schema_migration
         WHERE version = (SELECT max(version) FROM ${sql(schema)}.schema_migration) RETURNING version`
      const pending = yield* Effect.flip(Layer.build(app.watch(schema, { migrate: true })).pipe(Effect.scoped))
      expect(pending).toMatchObject({ reason: "Permission" })
      expect(pending.message).toContain(`1 pgwatch migration(s) pending for schema "${schema}" (${String(last!.version).padStart(4, "0")}_`)
      expect(pending.message).toContain(`run \`pgwatch migrate\` as "${owner}"`)

      // A schema that does not exist yet: CREATE on the database is what is missing.
      const fresh = freshSchema()
      const create = yield* Effect.flip(Migrator.migrate({ schema: fresh }).pipe(Effect.provide(app.client)))
      expect(create).toMatchObject({ reason: "Permission" })
      expect(create.message).toContain(`schema "${fresh}" does not exist and role "${app.name}" may not create it`)
      expect(create.message).toContain(`GRANT CREATE ON DATABASE`)

      // No grants at all: reading the version is refused, with the command that grants it.
      const stranger = yield* loginRole("stranger")
      const read = yield* Effect.flip(Migrator.pending({ schema }).pipe(Effect.provide(stranger.client)))
      expect(read).toMatchObject({ reason: "Permission" })
      expect(read.message).toContain(`run \`pgwatch grant ${stranger.name} --as consumer\``)
    }).pipe(Effect.scoped, Effect.provide(PgLive)))
})
