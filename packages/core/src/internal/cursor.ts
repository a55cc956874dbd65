import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Snapshot from "./snapshot.js"

/**
 * A consumer's position in the log: every row visible in `done` is handled; of the snapshot
 * `batch` being paged through, rows up to (afterXid, afterId) are handled; and so are the rows
 * of the transactions in `live`, delivered live since `done` in commit order: all of them for
 * every xid but the last, and the last one's up to `liveAfterId`.
 */
export interface Cursor {
  readonly done: string
  readonly batch: string | null
  readonly afterXid: string
  readonly afterId: string
  readonly live: ReadonlyArray<string>
  readonly liveAfterId: string
}

export const between = (done: string): Cursor => ({ done, batch: null, afterXid: "0", afterId: "0", live: [], liveAfterId: "0" })

/** Whether a page or live row is already handled through the live set. */
export const deliveredLive = (cursor: Cursor, xid: string, id: bigint): boolean => {
  const last = cursor.live.length - 1
  if (last < 0) return false
  if (cursor.live[last] === xid) return id <= BigInt(cursor.liveAfterId)
  return cursor.live.includes(xid)
}

/** Where a new consumer starts: the whole retained log, or only what commits from now on. */
export type StartFrom = "beginning" | "now"

interface CursorRow {
  readonly done: string
  readonly batch: string | null
  readonly after_xid: string | null
  readonly after_id: string | null
  /** The live set as text (`{1,2}`): xid8[] has no array parser in `pg`. */
  readonly live_xids: string
  readonly live_after_id: string | null
}

const returning = "done::text, batch::text, after_xid::text, after_id::text, live_xids::text, live_after_id::text"

/** Registers the consumer if new and returns its saved position. */
export const register = (schema: string, consumerId: string, channels: ReadonlyArray<string>, startFrom: StartFrom) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const start = startFrom === "now" ? sql`pg_current_snapshot()` : sql`${Snapshot.beginning}::pg_snapshot`
    const rows = yield* sql<CursorRow>`
      INSERT INTO ${sql(schema)}.consumer (id, channels, done)
      VALUES (${consumerId}, ${channels}::text[], ${start})
      ON CONFLICT (id) DO UPDATE SET channels = excluded.channels
      RETURNING ${sql.literal(returning)}`
    return fromRow(rows[0]!)
  })

/** Moves a consumer to "only what commits from now on", dropping its unplayed backlog. */
export const skipToNow = (schema: string, consumerId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<CursorRow>`
      UPDATE ${sql(schema)}.consumer
         SET done = pg_current_snapshot(), batch = NULL, after_xid = NULL, after_id = NULL,
             live_xids = '{}', live_after_id = NULL, updated_at = now()
       WHERE id = ${consumerId}
      RETURNING ${sql.literal(returning)}`
    return fromRow(rows[0]!)
  })

const fromRow = (row: CursorRow): Cursor => ({
  done: row.done,
  batch: row.batch,
  afterXid: row.after_xid ?? "0",
  afterId: row.after_id ?? "0",
  live: row.live_xids === "{}" ? [] : row.live_xids.slice(1, -1).split(","),
  liveAfterId: row.live_after_id ?? "0"
})

/** What a group of handled notifications moves: the cursor, and redeliveries now done. */
export interface Progress {
  readonly cursor: Option.Option<Cursor>
  readonly handled: number
  readonly lastLogId: Option.Option<bigint>
  readonly redelivered: ReadonlyArray<bigint>
}

export const noProgress: Progress = { cursor: Option.none(), handled: 0, lastLogId: Option.none(), redelivered: [] }

/** A handled delivery, as far as progress goes. */
interface Handled {
  readonly id: bigint
  readonly cursor: Option.Option<Cursor>
  readonly redelivery: Option.Option<{ readonly logId: bigint }>
}

/** Progress being gathered in place, one delivery at a time (the committer's, per notification). */
export interface Gathering {
  cursor: Option.Option<Cursor>
  handled: number
  lastLogId: Option.Option<bigint>
  readonly redelivered: Array<bigint>
}

/** Adds one handled delivery, given in stream order, to progress being gathered. */
export const gather = (progress: Gathering, delivery: Handled): void => {
  progress.handled += 1
  progress.lastLogId = Option.some(delivery.id)
  if (Option.isSome(delivery.cursor)) progress.cursor = delivery.cursor
  if (Option.isSome(delivery.redelivery)) progress.redelivered.push(delivery.redelivery.value.logId)
}

/** Progress after also handling these deliveries, given in stream order. */
export const advance = (progress: Progress, deliveries: Iterable<Handled>): Progress => {
  const next: Gathering = { ...progress, redelivered: [...progress.redelivered] }
  for (const delivery of deliveries) gather(next, delivery)
  return next
}

/**
 * Saves progress in one statement, written once per group of notifications, not per row. It
 * commits without waiting for the WAL flush: losing it in a server crash only means handling
 * those notifications again, which at-least-once delivery allows anyway.
 */
export const save = (schema: string, consumerId: string, progress: Progress): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    if (progress.handled === 0) return
    const sql = yield* SqlClient.SqlClient
    const cursor = Option.getOrNull(progress.cursor)
    yield* sql`
      WITH async AS (SELECT set_config('synchronous_commit', 'off', true)),
      cleared AS (
        DELETE FROM ${sql(schema)}.redelivery
         WHERE consumer_id = ${consumerId} AND log_id = ANY(${progress.redelivered.map(String)}::bigint[])
      )
      UPDATE ${sql(schema)}.consumer
         SET done = coalesce(${cursor?.done ?? null}::pg_snapshot, done),
             batch = CASE WHEN ${cursor !== null} THEN ${cursor?.batch ?? null}::pg_snapshot ELSE batch END,
             after_xid = coalesce(${cursor?.afterXid ?? null}::xid8, after_xid),
             after_id = coalesce(${cursor?.afterId ?? null}::bigint, after_id),
             live_xids = coalesce(${cursor === null ? null : `{${cursor.live.join(",")}}`}::xid8[], live_xids),
             live_after_id = coalesce(${cursor?.liveAfterId ?? null}::bigint, live_after_id),
             handled = handled + ${progress.handled},
             last_log_id = coalesce(${Option.getOrNull(Option.map(progress.lastLogId, String))}::bigint, last_log_id),
             updated_at = now()
        FROM async
       WHERE id = ${consumerId}`
  })
