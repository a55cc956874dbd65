import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Snapshot from "./snapshot.js"

/**
 * A consumer's position in the log: every row visible in `done` is handled; of the snapshot
 * `batch` being paged through, rows up to (afterXid, afterId) are handled.
 */
export interface Cursor {
  readonly done: string
  readonly batch: string | null
  readonly afterXid: string
  readonly afterId: string
}

export const between = (done: string): Cursor => ({ done, batch: null, afterXid: "0", afterId: "0" })

/** Where a new consumer starts: the whole retained log, or only what commits from now on. */
export type StartFrom = "beginning" | "now"

interface CursorRow {
  readonly done: string
  readonly batch: string | null
  readonly after_xid: string | null
  readonly after_id: string | null
}

/** Registers the consumer if new and returns its saved position. */
export const register = (schema: string, consumerId: string, channels: ReadonlyArray<string>, startFrom: StartFrom) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const start = startFrom === "now" ? sql`pg_current_snapshot()` : sql`${Snapshot.beginning}::pg_snapshot`
    const rows = yield* sql<CursorRow>`
      INSERT INTO ${sql(schema)}.consumer (id, channels, done)
      VALUES (${consumerId}, ${channels}::text[], ${start})
      ON CONFLICT (id) DO UPDATE SET channels = excluded.channels, updated_at = now()
      RETURNING done::text, batch::text, after_xid::text, after_id::text`
    return fromRow(rows[0]!)
  })

/** Moves a consumer to "only what commits from now on", dropping its unplayed backlog. */
export const skipToNow = (schema: string, consumerId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<CursorRow>`
      UPDATE ${sql(schema)}.consumer
         SET done = pg_current_snapshot(), batch = NULL, after_xid = NULL, after_id = NULL, updated_at = now()
       WHERE id = ${consumerId}
      RETURNING done::text, batch::text, after_xid::text, after_id::text`
    return fromRow(rows[0]!)
  })

const fromRow = (row: CursorRow): Cursor => ({
  done: row.done,
  batch: row.batch,
  afterXid: row.after_xid ?? "0",
  afterId: row.after_id ?? "0"
})

/** What a group of handled notifications moves: the cursor, and redeliveries now done. */
export interface Progress {
  readonly cursor: Option.Option<Cursor>
  readonly handled: number
  readonly lastLogId: Option.Option<bigint>
  readonly redelivered: ReadonlyArray<bigint>
}

/** Saves progress in one transaction: written once per group of notifications, not per row. */
export const save = (schema: string, consumerId: string, progress: Progress): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lastLogId = Option.getOrNull(Option.map(progress.lastLogId, String))
    const update = Option.match(progress.cursor, {
      onNone: () =>
        sql`UPDATE ${sql(schema)}.consumer SET handled = handled + ${progress.handled},
              last_log_id = coalesce(${lastLogId}::bigint, last_log_id), updated_at = now()
            WHERE id = ${consumerId}`,
      onSome: (cursor) =>
        sql`UPDATE ${sql(schema)}.consumer
               SET done = ${cursor.done}::pg_snapshot, batch = ${cursor.batch}::pg_snapshot,
                   after_xid = ${cursor.afterXid}::xid8, after_id = ${cursor.afterId}::bigint,
                   handled = handled + ${progress.handled},
                   last_log_id = coalesce(${lastLogId}::bigint, last_log_id), updated_at = now()
             WHERE id = ${consumerId}`
    })
    const redelivered = progress.redelivered.map(String)
    yield* redelivered.length === 0 ? update : sql.withTransaction(Effect.zipRight(
      update,
      sql`DELETE FROM ${sql(schema)}.redelivery WHERE consumer_id = ${consumerId} AND log_id = ANY(${redelivered}::bigint[])`
    ))
  })
