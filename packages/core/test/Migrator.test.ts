import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer } from "effect"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import { migrationNames } from "../../../test-support/migrations.js"
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
})
