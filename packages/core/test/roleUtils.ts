import { PgClient } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Redacted } from "effect"
import * as Pg from "pg"
import * as PgWatch from "../src/PgWatch.js"
import * as Roles from "../src/Roles.js"
import { databaseUrl, freshSchema, testOptions } from "./utils.js"

const suffix = () => Math.random().toString(36).slice(2, 10)

/** A connection URL for a role (with a password, for servers that ask for one). */
export const urlFor = (role: string, password: string) => {
  const url = new URL(databaseUrl)
  url.username = role
  url.password = password
  return url.toString()
}

export interface LoginRole {
  readonly name: string
  /** A `PgClient` connected as the role. */
  readonly client: Layer.Layer<PgClient.PgClient, SqlError>
  /** The pgwatch service on a schema, connected as the role. */
  readonly watch: (schema: string, options?: PgWatch.Options) => Layer.Layer<PgWatch.PgWatch | PgClient.PgClient, unknown>
}

/** Drops roles (cluster-wide) and whatever privileges they hold in this database. */
export const dropRoles = (names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    for (const name of names) {
      const [{ exists }] = yield* sql<{ exists: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${name}) AS exists`
      if (!exists) continue
      const role = Pg.escapeIdentifier(name)
      yield* sql.unsafe(`REASSIGN OWNED BY ${role} TO CURRENT_USER`)
      yield* sql.unsafe(`DROP OWNED BY ${role}`)
      yield* sql.unsafe(`DROP ROLE ${role}`)
    }
  })

/** A LOGIN role with a unique name and nothing granted, dropped when the scope closes. */
export const loginRole = (prefix: string) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const name = `pgw_${prefix}_${suffix()}`
      const password = suffix()
      yield* sql.unsafe(`CREATE ROLE ${Pg.escapeIdentifier(name)} LOGIN PASSWORD '${password}'`)
      const client = PgClient.layer({ url: Redacted.make(urlFor(name, password)), maxConnections: 4 })
      return {
        name,
        client,
        watch: (schema, options = {}) =>
          PgWatch.layer({ schema, ...testOptions, ...options }).pipe(Layer.provideMerge(client))
      } satisfies LoginRole
    }),
    ({ name }) => dropRoles([name]).pipe(Effect.orDie)
  )

/** The SQLSTATE of a failed query, if any: the library's own reading of it. */
export { sqlState } from "../src/internal/sqlState.js"

/** A fresh schema name, dropped (with its group roles) when the scope closes. */
export const schemaWithRoles = Effect.gen(function*() {
  const schema = freshSchema()
  const sql = yield* PgClient.PgClient
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      yield* dropRoles(Roles.kinds.map((kind) => Roles.groupRole(schema, kind)))
    }).pipe(Effect.orDie)
  )
  return schema
})
