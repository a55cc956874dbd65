/**
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { PgWatchError } from "./PgWatchError.js"
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

/** What the connected role may do with the schema, read from catalogs every role can read. */
interface Access {
  readonly role: string
  readonly database: string
  readonly schema_exists: boolean
  readonly schema_usage: boolean
  readonly schema_create: boolean
  readonly database_create: boolean
  readonly table_exists: boolean
  readonly table_select: boolean
  /** Who owns pgwatch's objects: the owner of schema_migration, else of the schema. */
  readonly owner: string | null
  readonly acts_as_owner: boolean
}

const access = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<Access>`
      SELECT current_user AS role, pg_catalog.current_database() AS database,
             n.oid IS NOT NULL AS schema_exists,
             coalesce(pg_catalog.has_schema_privilege(n.oid, 'USAGE'), false) AS schema_usage,
             coalesce(pg_catalog.has_schema_privilege(n.oid, 'CREATE'), false) AS schema_create,
             pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS database_create,
             c.oid IS NOT NULL AS table_exists,
             coalesce(pg_catalog.has_table_privilege(c.oid, 'SELECT'), false) AS table_select,
             pg_catalog.pg_get_userbyid(coalesce(c.relowner, n.nspowner)) AS owner,
             coalesce(pg_catalog.pg_has_role(coalesce(c.relowner, n.nspowner), 'USAGE'), false) AS acts_as_owner
        FROM (SELECT) AS one
        LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = ${schema}
        LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = 'schema_migration'`
    return row!
  })

const quoted = (name: string | null) => JSON.stringify(name ?? "")

const permissionError = (message: string) => new PgWatchError({ reason: "Permission", message })

/** Reading the applied versions needs USAGE on the schema and SELECT on schema_migration. */
const appliedVersions = (schema: string, state: Access) =>
  Effect.gen(function*() {
    if (!state.schema_exists || !state.table_exists) return new Set<number>()
    if (!state.schema_usage || !state.table_select) {
      return yield* permissionError(
        `role ${quoted(state.role)} may not read pgwatch's schema ${quoted(schema)} (${
          state.schema_usage ? `no SELECT on ${schema}.schema_migration` : "no USAGE on the schema"
        }): as its owner ${quoted(state.owner)}, run \`pgwatch grant ${state.role} --as consumer\` (or producer, operator)`
      )
    }
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ version: number }>`SELECT version FROM ${sql(schema)}.schema_migration`
    return new Set(rows.map((row) => row.version))
  })

const pendingOf = (files: ReadonlyArray<SqlFiles.SqlFile>, schema: string, state: Access) =>
  Effect.map(
    appliedVersions(schema, state),
    (applied) => files.filter((file) => !applied.has(file.version)).map((file): Migration => ({ ...file, sql: file.text }))
  )

/** The SQL files, what the connected role may do with the schema, and which files are pending. */
const survey = (schema: string) =>
  Effect.gen(function*() {
    const files = yield* SqlFiles.load(schema)
    const state = yield* access(schema)
    return { files, state, todo: yield* pendingOf(files, schema, state) }
  })

/**
 * The migrations not yet applied to the schema, in order. Reads only: any role with the
 * grants of `pgwatch grant` (or none, while the schema does not exist) may ask.
 *
 * @since 0.1.0
 * @category migrations
 */
export const pending = (options: { readonly schema: string }): Effect.Effect<
  ReadonlyArray<Migration>,
  PgWatchError | SqlError,
  SqlClient.SqlClient
> =>
  Effect.map(survey(options.schema), ({ todo }) => todo)

const names = (todo: ReadonlyArray<Migration>) =>
  todo.map((m) => `${String(m.version).padStart(4, "0")}_${m.name}`).join(", ")

/** Fails, saying what is missing, when the role cannot apply what is pending. */
const requireRights = (schema: string, state: Access, todo: ReadonlyArray<Migration>) => {
  const what = `${todo.length} pgwatch migration(s) pending for schema ${quoted(schema)} (${names(todo)})`
  if (!state.schema_exists && !state.database_create) {
    return Effect.fail(permissionError(
      `${what}, but schema ${quoted(schema)} does not exist and role ${quoted(state.role)} may not create it ` +
        `(no CREATE privilege on database ${quoted(state.database)}): run \`pgwatch migrate\` as the role that ` +
        `should own pgwatch's objects, or GRANT CREATE ON DATABASE ${quoted(state.database)} TO ${quoted(state.role)}`
    ))
  }
  if (state.schema_exists && state.table_exists && !state.acts_as_owner) {
    return Effect.fail(permissionError(
      `${what}, but role ${quoted(state.role)} may not apply them: pgwatch's objects belong to role ` +
        `${quoted(state.owner)}; run \`pgwatch migrate\` as ${quoted(state.owner)} (or a member of it)`
    ))
  }
  if (state.schema_exists && !state.schema_create) {
    return Effect.fail(permissionError(
      `${what}, but role ${quoted(state.role)} has no CREATE privilege on schema ${quoted(schema)} (owner ` +
        `${quoted(state.owner)}): run \`pgwatch migrate\` as ${quoted(state.owner)}, or GRANT CREATE ON SCHEMA ` +
        `${quoted(schema)} TO ${quoted(state.role)}`
    ))
  }
  return Effect.void
}

/**
 * Applies the pending migrations in one transaction, under an advisory lock so that two
 * processes migrating at once take turns. Safe to run again: applied versions are skipped.
 * With `dryRun`, returns what it would apply and changes nothing.
 *
 * What is pending is read first, so that a role without the owner's privileges (an app's
 * role, with `migrate: true`) passes when nothing is, and learns what it lacks when
 * something is.
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
    const { files, state, todo } = yield* survey(options.schema)
    if (options.dryRun === true || todo.length === 0) return todo
    yield* requireRights(options.schema, state, todo)
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(${`pgwatch.migrate.${options.schema}`}))`
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(options.schema)}`
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(options.schema)}.schema_migration (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`
      // Another process may have applied some while this one waited for the lock.
      const locked = yield* pendingOf(files, options.schema, yield* access(options.schema))
      for (const migration of locked) {
        yield* sql.unsafe(migration.sql)
        yield* sql`INSERT INTO ${sql(options.schema)}.schema_migration (version, name)
                   VALUES (${migration.version}, ${migration.name})`
      }
      return locked
    }))
  }).pipe(Effect.withSpan("Migrator.migrate", { attributes: { schema: options.schema } }))
