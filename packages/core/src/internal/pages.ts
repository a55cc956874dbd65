import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Json from "../Json.js"
import { retryIdempotent } from "./connectionLoss.js"
import type { Cursor } from "./cursor.js"

/** One log row of a page. */
export interface PageRow {
  readonly id: bigint
  readonly channel: string
  readonly payload: unknown
  readonly createdAt: Date
  readonly xid: string
}

/** A page of a batch: its rows in (xid, id) order, the batch snapshot, and whether it ends the batch. */
export interface Page {
  readonly rows: ReadonlyArray<PageRow>
  readonly batch: string
  readonly complete: boolean
}

export interface PageRequest {
  readonly schema: string
  readonly channels: ReadonlyArray<string>
  readonly cursor: Cursor
  readonly pageSize: number
  /** Payload bytes per page; a row larger than this comes alone. */
  readonly pageBytes: number
}

interface LogRow {
  readonly batch: string
  readonly complete: boolean
  readonly id: string | null
  readonly channel: string
  /** The jsonb as text: `Json.parse` keeps its numbers exact, where `pg` would round them. */
  readonly payload: string
  readonly created_at: Date
  readonly xid: string
}

/**
 * The next page of what became visible on the channels since the cursor: the rest of its batch,
 * or (between batches) a new batch at the current snapshot. Safe to repeat on a pooled
 * connection the server has just ended.
 */
export const read = (request: PageRequest): Effect.Effect<Page, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { cursor } = request
    const rows = yield* retryIdempotent(sql<LogRow>`
      SELECT page_batch AS batch, page_complete AS complete, log_id::text AS id, log_channel AS channel,
             log_payload::text AS payload, log_created_at AS created_at, log_xid::text AS xid
        FROM ${sql(request.schema)}.read_batch_page(
          ${request.channels}::text[], ${cursor.done}::pg_snapshot, ${cursor.batch}::pg_snapshot,
          ${cursor.afterXid}::xid8, ${cursor.afterId}::bigint, ${request.pageSize}, ${request.pageBytes}::bigint)`)
    // The last row is a marker: the batch snapshot, and whether this page finished the batch
    // (a page cut short by its byte budget did not).
    const { batch, complete } = rows.at(-1)!
    return {
      batch,
      complete,
      rows: rows.slice(0, -1).map((row) => ({
        id: BigInt(row.id!),
        channel: row.channel,
        payload: Json.parse(row.payload),
        createdAt: row.created_at,
        xid: row.xid
      }))
    }
  })
