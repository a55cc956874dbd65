import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Json from "../Json.js"
import { retryIdempotent } from "./connectionLoss.js"
import type { Cursor } from "./cursor.js"
import { deepFreeze } from "./deepFreeze.js"

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
  /** The process's shared reads (`PgWatch`): absent, the page is read for this request alone. */
  readonly shared?: SharedPages | undefined
  /**
   * Between batches, whether the new batch may be one whose snapshot another consumer's read
   * took before this call (up to the shared lifetime earlier): right for a reader that polls,
   * not for one that counts on its new batch covering the wake-ups (or the LISTEN) it has just
   * handled. Otherwise it shares only a read not yet sent. Default false.
   */
  readonly acceptEarlierBatch?: boolean | undefined
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

/** The arities of the merged readers (sql/0011): `read_page_2` ... `read_page_512`. */
export const mergedArities: ReadonlyArray<number> = [2, 4, 8, 16, 32, 64, 128, 256, 512]

/**
 * The function that reads a page of these channels: one channel (or more than the largest
 * merge) is read_batch_page's index range; more are the smallest merge that holds them.
 */
export const readerFor = (channels: number): string => {
  const arity = mergedArities.find((n) => n >= channels)
  return channels <= 1 || arity === undefined ? "read_batch_page" : `read_page_${arity}`
}

/** A page as read, and its payloads' size (what it holds in the heap, roughly). */
interface ReadPage {
  readonly page: Page
  readonly bytes: number
}

const query = (request: PageRequest, freeze: boolean): Effect.Effect<ReadPage, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { cursor } = request
    const rows = yield* retryIdempotent(sql<LogRow>`
      SELECT page_batch AS batch, page_complete AS complete, log_id::text AS id, log_channel AS channel,
             log_payload::text AS payload, log_created_at AS created_at, log_xid::text AS xid
        FROM ${sql(request.schema)}.${sql(readerFor(request.channels.length))}(
          ${request.channels}::text[], ${cursor.done}::pg_snapshot, ${cursor.batch}::pg_snapshot,
          ${cursor.afterXid}::xid8, ${cursor.afterId}::bigint, ${request.pageSize}, ${request.pageBytes}::bigint)`)
    // The last row is a marker: the batch snapshot, and whether this page finished the batch
    // (a page cut short by its byte budget did not).
    const { batch, complete } = rows.at(-1)!
    let bytes = 0
    const found = rows.slice(0, -1).map((row): PageRow => {
      bytes += row.payload.length
      const payload = Json.parse(row.payload)
      const pageRow = {
        id: BigInt(row.id!),
        channel: row.channel,
        payload: freeze ? deepFreeze(payload) : payload,
        createdAt: row.created_at,
        xid: row.xid
      }
      return freeze ? Object.freeze(pageRow) : pageRow
    })
    return { page: { batch, complete, rows: freeze ? Object.freeze(found) : found }, bytes }
  })

/**
 * Pages read in this process, recently or under way, by request: consumers at the same
 * position on the same channels read and decode a page once between them.
 */
export interface SharedPages {
  readonly entries: Map<string, Entry>
  /** Where reads run: a read outlives the consumer that started it, which others may be awaiting. */
  readonly scope: Scope.Scope
  /** How long a page read stays on offer, from when it was started. */
  readonly lifetimeMillis: number
  readonly maxEntries: number
  /** The payload bytes of the pages held, at most. */
  readonly maxBytes: number
  bytes: number
}

interface Entry {
  readonly read: Deferred.Deferred<ReadPage, SqlError>
  readonly startedAt: number
  /** Whether the query has gone: a snapshot it takes may be older than a later request. */
  sent: boolean
  bytes: number
}

/** Process-wide defaults: pages share while consumers read within 50 ms of each other. */
const defaults = { lifetimeMillis: 50, maxEntries: 64, maxBytes: 64 * 1024 * 1024 }

/**
 * Shared reads for a process, their reads run in `scope` (the service's).
 */
export const makeShared = (
  options: Partial<Pick<SharedPages, "lifetimeMillis" | "maxEntries" | "maxBytes">> = {}
): Effect.Effect<SharedPages, never, Scope.Scope> =>
  Effect.map(Effect.scope, (scope) => ({ ...defaults, ...options, scope, entries: new Map(), bytes: 0 }))

// Channels are validated names (no comma, no NUL); the page does not depend on their order.
const keyOf = (request: PageRequest) =>
  [
    request.schema,
    [...request.channels].sort().join(","),
    request.cursor.done,
    request.cursor.batch ?? "",
    request.cursor.afterXid,
    request.cursor.afterId,
    request.pageSize,
    request.pageBytes
  ].join("\u0000")

const forget = (shared: SharedPages, key: string, entry: Entry) => {
  if (shared.entries.get(key) === entry) {
    shared.entries.delete(key)
    shared.bytes -= entry.bytes
  }
}

/** Drops pages past their lifetime, then the oldest while over the bounds (in start order). */
const evict = (shared: SharedPages, now: number) => {
  for (const [key, entry] of shared.entries) {
    const over = shared.entries.size > shared.maxEntries || shared.bytes > shared.maxBytes
    if (!over && now - entry.startedAt < shared.lifetimeMillis) break
    forget(shared, key, entry)
  }
}

/**
 * One turn of the event loop (`setImmediate`): consumers woken by the same NOTIFY go through a
 * few asynchronous steps before they ask for their page; one `Effect.yieldNow` was too short for
 * most of them to join (measured), a timer would cost a millisecond.
 */
const nextTurn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * A page for a request, read once for every consumer that asks for it within the lifetime.
 *
 * Sharing is exact. With a batch, the page is a function of the key alone: the rows visible in
 * the batch snapshot and not in `done` are committed and fixed, so every read of the same key
 * returns the same rows. Without a batch (between batches) the read takes a snapshot, and any
 * snapshot taken after `done` is as good as one taken now: it contains `done` (a later snapshot
 * sees all an earlier one sees), so the batch holds exactly what became visible since `done`
 * up to it, and what commits after it comes in the next batch; nothing is skipped or repeated.
 * An identical request started earlier took its snapshot after `done` (the cursor already held
 * it). What such a batch lacks is freshness: it may end before wake-ups the caller has handled,
 * so it is taken only with `acceptEarlierBatch`. Otherwise a new batch is shared only by
 * requests made before its query goes: the first waits a turn of the event loop before
 * sending, so that consumers woken by the same NOTIFY join it, and its snapshot is newer than
 * all their calls.
 */
const readShared = (shared: SharedPages, request: PageRequest) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    evict(shared, now)
    const key = keyOf(request)
    const found = shared.entries.get(key)
    const fresh = request.cursor.batch === null && request.acceptEarlierBatch !== true
    if (found !== undefined && !(fresh && found.sent)) return yield* Deferred.await(found.read)
    if (found !== undefined) forget(shared, key, found)
    const entry: Entry = { read: yield* Deferred.make<ReadPage, SqlError>(), startedAt: now, sent: false, bytes: 0 }
    shared.entries.set(key, entry)
    // Forked at once, the wait included: a caller that stops leaves the read to those joining it.
    yield* (fresh ? nextTurn : Effect.void).pipe(
      Effect.zipRight(Effect.sync(() => {
        entry.sent = true
      })),
      Effect.zipRight(query(request, true)),
      Effect.tap((read) =>
        Effect.sync(() => {
          if (shared.entries.get(key) !== entry) return
          entry.bytes = read.bytes
          shared.bytes += read.bytes
        })
      ),
      // A failed read is not kept: the next request reads again.
      Effect.tapError(() => Effect.sync(() => forget(shared, key, entry))),
      Effect.exit,
      Effect.flatMap((exit) => Deferred.done(entry.read, exit)),
      Effect.forkIn(shared.scope)
    )
    return yield* Deferred.await(entry.read)
  })

/**
 * The next page of what became visible on the channels since the cursor: the rest of its batch,
 * or (between batches) a new batch at the current snapshot. Safe to repeat on a pooled
 * connection the server has just ended. With `shared`, the page may be one read for another
 * consumer at the same position (`readShared`), and its rows and payloads are frozen.
 */
export const read = (request: PageRequest): Effect.Effect<Page, SqlError, SqlClient.SqlClient> =>
  Effect.map(
    request.shared === undefined ? query(request, false) : readShared(request.shared, request),
    (read) => read.page
  )
