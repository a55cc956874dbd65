/**
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { PgWatchError } from "./PgWatchError.js"
import * as SqlFiles from "./internal/sqlFiles.js"

/**
 * A numbered file of `sql/`, rendered for a schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

const appliedVersions = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [{ exists }] = yield* sql<{ exists: boolean }>`
      SELECT to_regclass(${`"${schema}".schema_migration`}) IS NOT NULL AS exists`
    if (!exists) return new Set<number>()
    const rows = yield* sql<{ version: number }>`SELECT version FROM ${sql(schema)}.schema_migration`
    return new Set(rows.map((row) => row.version))
  })

/**
 * The migrations not yet applied to the schema, in order.
 *
 * @since 0.1.0
 * @category migrations
 */
export const pending = (options: { readonly schema: string }): Effect.Effect<
  ReadonlyArray<Migration>,
  PgWatchError | SqlError,
  SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const files = yield* SqlFiles.load(options.schema)
    const applied = yield* appliedVersions(options.schema)
    return files.filter((file) => !applied.has(file.version)).map((file) => ({ ...file, sql: file.text }))
  })

/**
 * Applies the pending migrations in one transaction, under an advisory lock so that two
 * processes migrating at once take turns. Safe to run again: applied versions are skipped.
 * With `dryRun`, returns what it would apply and changes nothing.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (options: { readonly schema: string; readonly dryRun?: boolean | undefined }): Effect.Effect<
  ReadonlyArray<Migration>,
  PgWatchError | SqlError,
  SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    if (options.dryRun === true) return yield* pending(options)
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`pgwatch.migrate.${options.schema}`}))`
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(options.schema)}`
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(options.schema)}.schema_migration (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`
      const todo = yield* pending(options)
      for (const migration of todo) {
        yield* sql.unsafe(migration.sql)
        yield* sql`INSERT INTO ${sql(options.schema)}.schema_migration (version, name)
                   VALUES (${migration.version}, ${migration.name})`
      }
      return todo
    }))
  }).pipe(Effect.withSpan("Migrator.migrate", { attributes: { schema: options.schema } }))
