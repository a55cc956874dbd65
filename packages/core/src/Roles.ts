/**
 * Who may do what with pgwatch's schema (README "Roles and privileges"). Its owner, the role
 * that runs the migrations, owns every object. Three group roles, named after the schema
 * (`pgwatch_producer`, `pgwatch_consumer`, `pgwatch_operator`), hold what each kind of user
 * needs and nothing more; `grant` creates them and makes a login role a member.
 *
 * @since 0.1.0
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Pg from "pg"
import * as Pages from "./internal/pages.js"
import { sqlState } from "./internal/sqlState.js"
import { PgWatch } from "./PgWatch.js"
import { PgWatchError } from "./PgWatchError.js"

/**
 * - `producer`: stores notifications (`PgWatch.notify`, `smart_notify`), only through
 *   functions that run with the owner's rights: it cannot write the log itself.
 * - `consumer`: runs consumers (`Consumer.layer`, `pgwatch listen`): reads the log, moves
 *   its position, records dead letters, registers for wake-ups, learns the key that verifies
 *   live rows (`live_key()`).
 * - `operator`: inspects and repairs (`status`, `failures`, `redrive`, `replay`, `cleanup`,
 *   `triggers`).
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = "producer" | "consumer" | "operator"

/**
 * @since 0.1.0
 * @category models
 */
export const kinds: ReadonlyArray<Kind> = ["producer", "consumer", "operator"]

/**
 * One privilege on one object of the schema (or the schema itself).
 *
 * @since 0.1.0
 * @category models
 */
export interface Privilege {
  readonly privileges: string
  readonly on: { readonly schema: true } | { readonly table: string } | { readonly function: string }
}

const table = (privileges: string, name: string): Privilege => ({ privileges, on: { table: name } })
const execute = (name: string): Privilege => ({ privileges: "EXECUTE", on: { function: name } })

/** What every role needs to start the service: see the schema, its version, forget dead waiters. */
const common: ReadonlyArray<Privilege> = [
  { privileges: "USAGE", on: { schema: true } },
  table("SELECT", "schema_migration"),
  execute("forget_dead_waiters")
]

/**
 * The privileges of each kind of role, beyond owning nothing.
 *
 * @since 0.1.0
 * @category models
 */
export const privileges: Readonly<Record<Kind, ReadonlyArray<Privilege>>> = {
  producer: [...common, execute("smart_notify"), execute("smart_notify_many")],
  consumer: [
    ...common,
    execute("read_batch_page"),
    ...Pages.mergedArities.map((arity) => execute(`read_page_${arity}`)),
    // What consumers read with before read_batch_page (0005): kept for processes of older
    // versions that still run against an upgraded schema.
    execute("next_page"),
    // The key that live-row NOTIFYs are signed with (0009): the table itself stays the owner's.
    execute("live_key"),
    table("SELECT", "notification_log"),
    table("SELECT, INSERT, UPDATE", "consumer"),
    table("SELECT, INSERT, UPDATE", "dead_letter"),
    table("SELECT, DELETE", "redelivery"),
    table("SELECT, INSERT, UPDATE, DELETE", "waiting")
  ],
  operator: [
    ...common,
    table("SELECT, DELETE", "notification_log"),
    table("SELECT, DELETE", "consumer"),
    table("SELECT, DELETE", "dead_letter"),
    table("SELECT, INSERT, UPDATE", "redelivery"),
    table("SELECT, DELETE", "waiting"),
    table("SELECT", "data_change_triggers"),
    execute("redelivery_wake_payload"),
    execute("add_data_change_trigger"),
    execute("remove_data_change_trigger"),
    execute("notify_data_change")
  ]
}

const MAX_IDENTIFIER = 63

/**
 * The group role of a kind for a schema: `<schema>_<kind>`.
 *
 * @since 0.1.0
 * @category roles
 */
export const groupRole = (schema: string, kind: Kind): string => `${schema}_${kind}`

const target = (schema: string, on: Privilege["on"]) =>
  "schema" in on
    ? `SCHEMA ${Pg.escapeIdentifier(schema)}`
    : "table" in on
    ? `TABLE ${Pg.escapeIdentifier(schema)}.${on.table}`
    : `FUNCTION ${Pg.escapeIdentifier(schema)}.${on.function}`

/**
 * The GRANT statements that give a kind's group role its privileges on the schema.
 *
 * @since 0.1.0
 * @category roles
 */
export const statements = (schema: string, kind: Kind): ReadonlyArray<string> =>
  privileges[kind].map((p) =>
    `GRANT ${p.privileges} ON ${target(schema, p.on)} TO ${Pg.escapeIdentifier(groupRole(schema, kind))}`
  )

/**
 * What `grant` did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Granted {
  readonly group: string
  readonly createdGroup: boolean
  readonly role: string
}

const permission = (message: string) => (error: SqlError): PgWatchError | SqlError =>
  sqlState(error) === "42501" ? new PgWatchError({ reason: "Permission", message, cause: error }) : error

/**
 * Makes `role` a member of the kind's group role, creating the group (NOLOGIN) if needed and
 * granting it its privileges (again, so that objects of newer migrations are covered). Run as
 * the schema's owner; creating the group needs CREATEROLE.
 *
 * @since 0.1.0
 * @category roles
 */
export const grant = (options: { readonly role: string; readonly kind: Kind }): Effect.Effect<
  Granted,
  PgWatchError | SqlError,
  PgWatch
> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const group = groupRole(settings.schema, options.kind)
    if (Buffer.byteLength(group) > MAX_IDENTIFIER) {
      return yield* new PgWatchError({
        reason: "Config",
        message: `schema name "${settings.schema}" is too long for role names: "${group}" passes ${MAX_IDENTIFIER} bytes`
      })
    }
    return yield* sql.withTransaction(Effect.gen(function*() {
      const [found] = yield* sql<{ role: boolean; group: boolean; owner: string }>`
        SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${options.role}) AS role,
               EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${group}) AS group,
               (SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace
                 WHERE nspname = ${settings.schema}) AS owner`
      if (!found!.role) {
        return yield* new PgWatchError({
          reason: "Config",
          message: `role "${options.role}" does not exist: create it first (CREATE ROLE ${
            Pg.escapeIdentifier(options.role)
          } LOGIN PASSWORD '...')`
        })
      }
      if (!found!.group) {
        yield* sql.unsafe(`CREATE ROLE ${Pg.escapeIdentifier(group)} NOLOGIN`).pipe(Effect.mapError(permission(
          `creating role "${group}" needs the CREATEROLE attribute: have an administrator run ` +
            `CREATE ROLE ${Pg.escapeIdentifier(group)} NOLOGIN, then run this again`
        )))
      }
      for (const statement of statements(settings.schema, options.kind)) {
        yield* sql.unsafe(statement).pipe(Effect.mapError(permission(
          `only the owner of schema "${settings.schema}" (role "${found!.owner}") may grant its privileges: ` +
            `run this as "${found!.owner}"`
        )))
      }
      yield* sql.unsafe(`GRANT ${Pg.escapeIdentifier(group)} TO ${Pg.escapeIdentifier(options.role)}`).pipe(
        Effect.mapError(permission(
          `making "${options.role}" a member of "${group}" needs CREATEROLE or ADMIN OPTION on "${group}"`
        ))
      )
      return { group, createdGroup: !found!.group, role: options.role }
    }))
  }).pipe(Effect.withSpan("Roles.grant", { attributes: { role: options.role, kind: options.kind } }))
