/**
 * Table triggers that turn INSERT/UPDATE/DELETE into notifications (`notify_data_change()`),
 * added and removed through the schema's `add_data_change_trigger` /
 * `remove_data_change_trigger` functions. Table names are passed as values and resolved by
 * PostgreSQL (`::regclass`), never pasted into SQL.
 *
 * @since 0.1.0
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { AdminError } from "./Admin.js"
import * as Channel from "./Channel.js"
import { sqlState } from "./internal/sqlState.js"
import { PgWatch } from "./PgWatch.js"
import { PgWatchError } from "./PgWatchError.js"

/**
 * A table with a notifying trigger.
 *
 * @since 0.1.0
 * @category models
 */
export interface DataChangeTrigger {
  /** As PostgreSQL prints it: schema-qualified unless on the search path, quoted if needed. */
  readonly table: string
  readonly trigger: string
  readonly channel: string
}

/**
 * The channel triggers use when none is given.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultChannel = "data_change"

/** Trigger names are `pgwatch_<channel>` and must stay within PostgreSQL's 63 bytes. */
const MAX_TRIGGER_CHANNEL = 55

const validateChannel = (channel: string) =>
  Effect.gen(function*() {
    const name = yield* Channel.validate(channel)
    if (name.length > MAX_TRIGGER_CHANNEL) {
      return yield* new PgWatchError({
        reason: "InvalidChannel",
        message: `invalid trigger channel "${channel}": at most ${MAX_TRIGGER_CHANNEL} characters (the trigger is named pgwatch_<channel>)`
      })
    }
    return name
  })

/** `::regclass` on a name that is not a table fails with undefined_table or invalid_name. */
const unknownTable = (table: string) => (error: SqlError): AdminError | SqlError => {
  const state = sqlState(error)
  if (state === "42P01" || state === "42602" || state === "3F000") {
    return new AdminError({
      reason: "UnknownTable",
      message: `table ${JSON.stringify(table)} does not exist (write it as PostgreSQL would: schema.table, "Quoted" for mixed case)`,
      cause: error
    })
  }
  return error
}

/**
 * Adds (or replaces) the trigger that writes a notification on `channel` (default
 * `data_change`) for every row inserted, updated or deleted in the table. The table name is
 * read like SQL: `orders`, `app.orders`, `"Orders"`.
 *
 * @since 0.1.0
 * @category triggers
 */
export const add = (
  table: string,
  options: { readonly channel?: string | undefined } = {}
): Effect.Effect<DataChangeTrigger, AdminError | PgWatchError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const channel = yield* validateChannel(options.channel ?? defaultChannel)
    const rows = yield* sql<{ table: string; trigger: string }>`
      SELECT ${table}::regclass::text AS table,
             ${sql(settings.schema)}.add_data_change_trigger(${table}::regclass, ${channel}) AS trigger`.pipe(
      Effect.mapError(unknownTable(table))
    )
    return { table: rows[0]!.table, trigger: rows[0]!.trigger, channel }
  }).pipe(Effect.withSpan("Triggers.add", { attributes: { table } }))

/**
 * Removes the table's trigger for `channel` (default `data_change`); returns whether there
 * was one.
 *
 * @since 0.1.0
 * @category triggers
 */
export const remove = (
  table: string,
  options: { readonly channel?: string | undefined } = {}
): Effect.Effect<boolean, AdminError | PgWatchError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const channel = yield* validateChannel(options.channel ?? defaultChannel)
    const rows = yield* sql<{ removed: boolean }>`
      SELECT ${sql(settings.schema)}.remove_data_change_trigger(${table}::regclass, ${channel}) AS removed`.pipe(
      Effect.mapError(unknownTable(table))
    )
    return rows[0]!.removed
  }).pipe(Effect.withSpan("Triggers.remove", { attributes: { table } }))

/**
 * Every table with a notifying trigger of this schema (or only the given table's), by table
 * then channel.
 *
 * @since 0.1.0
 * @category triggers
 */
export const list = (
  options: { readonly table?: string | undefined } = {}
): Effect.Effect<ReadonlyArray<DataChangeTrigger>, AdminError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const table = options.table ?? null
    const rows = yield* sql<{ table_name: string; trigger_name: string; channel: string }>`
      SELECT table_name, trigger_name, channel FROM ${sql(settings.schema)}.data_change_triggers
       WHERE ${table}::text IS NULL OR table_name = (${table}::text::regclass)::text
       ORDER BY table_name, channel`.pipe(
      Effect.mapError(unknownTable(options.table ?? ""))
    )
    return rows.map((row) => ({ table: row.table_name, trigger: row.trigger_name, channel: row.channel }))
  }).pipe(Effect.withSpan("Triggers.list"))
