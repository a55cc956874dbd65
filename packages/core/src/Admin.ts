/**
 * Operating pgwatch from outside a consumer: where each consumer stands (running or not, lag,
 * dead letters, the error it is retrying), the server's NOTIFY queue, and the levers an operator
 * pulls: re-drive or discard dead letters, replay notifications, remove a consumer. Re-driving and replaying both write the `redelivery`
 * table, which a running consumer reads out of band of its cursor, then wake the consumer's
 * channels so it looks soon.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Json from "./Json.js"
import { PgWatch } from "./PgWatch.js"

/**
 * What an operator asked for that does not exist or cannot be done, with a reason to branch
 * on and a message naming what does exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class AdminError extends Schema.TaggedError<AdminError>("@pgwatch/AdminError")("AdminError", {
  reason: Schema.Literal("UnknownConsumer", "UnknownLogIds", "UnknownTable", "InvalidArgument", "ConsumerRunning"),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * One channel of one consumer.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChannelStatus {
  readonly channel: string
  /** Committed notifications on the channel the consumer has not handled yet. */
  readonly pending: number
  /** When the oldest of them was written; null when none is pending. */
  readonly oldestPendingAt: Date | null
  /** Seconds between the oldest pending notification and now; 0 when none is pending. */
  readonly lagSeconds: number
  /** Dead letters of the consumer on this channel. */
  readonly deadLetters: number
}

/**
 * Whether a consumer runs: `running` (its process holds its listen connection open),
 * `stopped` (not running, or stopped cleanly), or `unknown` (marked running, but the session it
 * held is gone: the process died without cleaning up, or is reconnecting).
 *
 * @since 0.1.0
 * @category models
 */
export type RunState = "running" | "stopped" | "unknown"

/**
 * The process a consumer runs in (or last ran in, when its state is `unknown`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunningProcess {
  readonly host: string
  /** The OS process id on that host. */
  readonly pid: number
  readonly since: Date
  /** The server pid of the listen connection it holds; null until it has connected. */
  readonly backendPid: number | null
}

/**
 * The failure of the notification a consumer is retrying now.
 *
 * @since 0.1.0
 * @category models
 */
export interface CurrentError {
  readonly logId: bigint
  /** The attempt that failed (1 is the first try). */
  readonly attempt: number
  readonly error: string
  /** When the notification first failed. */
  readonly since: Date
}

/**
 * Where a registered consumer stands.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConsumerStatus {
  readonly id: string
  readonly channels: ReadonlyArray<string>
  readonly state: RunState
  /** Set while running (and when `unknown`), null when stopped. */
  readonly runningOn: RunningProcess | null
  /** Set while a notification is being retried. */
  readonly currentError: CurrentError | null
  /** Notifications handled (successfully) since the consumer was registered, replays included. */
  readonly handled: number
  /** Notifications given up on since the consumer was registered (`deadLetters` are those still kept). */
  readonly deadLettered: number
  /** The log id of the last notification it handled, and when that was written. */
  readonly lastLogId: bigint | null
  readonly lastLogAt: Date | null
  /** When its progress was last saved. */
  readonly updatedAt: Date
  readonly lastError: string | null
  readonly pending: number
  readonly lagSeconds: number
  readonly deadLetters: number
  /** Notifications queued for redelivery (re-driven or replayed), not yet handled. */
  readonly redeliveries: number
  /**
   * How it learns of new rows when last running: by `wake-ups` (LISTEN works), or `polling`
   * (its listen connection was lost or cannot deliver, e.g. behind a transaction pooler).
   */
  readonly deliveryMode: "wake-ups" | "polling" | null
  readonly byChannel: ReadonlyArray<ChannelStatus>
}

interface StatusRow {
  readonly id: string
  readonly channels: ReadonlyArray<string>
  readonly state: RunState
  readonly running_host: string | null
  readonly running_pid: number | null
  readonly running_since: Date | null
  readonly running_backend_pid: number | null
  readonly current_error: string | null
  readonly current_attempt: number | null
  readonly current_log_id: string | null
  readonly error_since: Date | null
  readonly handled: string
  readonly dead_lettered: string
  readonly last_log_id: string | null
  readonly last_log_at: Date | null
  readonly updated_at: Date
  readonly last_error: string | null
  readonly redeliveries: string
  readonly delivery_mode: "wake-ups" | "polling" | null
  readonly channel: string
  readonly pending: string
  readonly oldest_pending_at: Date | null
  readonly lag_seconds: number | null
  readonly dead_letters: string
}

/**
 * A consumer row's run state (alias `c`): a run is only believed while the server still has
 * the session the running process holds open.
 */
const runState = (sql: PgClient.PgClient) =>
  sql`CASE WHEN c.running_since IS NULL THEN 'stopped'
           WHEN EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.running_backend_pid) THEN 'running'
           ELSE 'unknown' END`

/**
 * Every registered consumer (or those named) with its lag per channel, dead letters and last
 * error, ordered by id. "Pending" counts committed notifications the consumer's cursor has
 * not passed; the count uses the log's `(channel, xid, id)` index from the cursor's snapshot on.
 *
 * @since 0.1.0
 * @category status
 */
export const status = (
  options: { readonly consumerIds?: ReadonlyArray<string> | undefined } = {}
): Effect.Effect<ReadonlyArray<ConsumerStatus>, SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    const ids = options.consumerIds === undefined ? null : [...options.consumerIds]
    const rows = yield* sql<StatusRow>`
      SELECT c.id, c.channels, ${runState(sql)} AS state,
             c.running_host, c.running_pid, c.running_since, c.running_backend_pid,
             c.current_error, c.current_attempt, c.current_log_id::text, c.error_since,
             greatest(c.handled - c.dead_lettered, 0)::text AS handled, c.dead_lettered::text,
             c.last_log_id::text,
             (SELECT l.created_at FROM ${schema}.notification_log l WHERE l.id = c.last_log_id) AS last_log_at,
             c.updated_at, c.last_error, c.delivery_mode,
             (SELECT count(*) FROM ${schema}.redelivery r WHERE r.consumer_id = c.id)::text AS redeliveries,
             ch.channel, p.pending::text, p.oldest AS oldest_pending_at,
             extract(epoch FROM now() - p.oldest)::float8 AS lag_seconds,
             (SELECT count(*) FROM ${schema}.dead_letter d
                JOIN ${schema}.notification_log l ON l.id = d.log_id
               WHERE d.consumer_id = c.id AND l.channel = ch.channel)::text AS dead_letters
        FROM ${schema}.consumer c
        CROSS JOIN LATERAL pg_catalog.unnest(c.channels) WITH ORDINALITY AS ch(channel, n)
        CROSS JOIN LATERAL (
          SELECT count(*) AS pending, min(l.created_at) AS oldest
            FROM ${schema}.notification_log l
           WHERE l.channel = ch.channel
             AND l.xid >= pg_snapshot_xmin(c.done)
             AND NOT pg_visible_in_snapshot(l.xid, c.done)
             AND NOT coalesce(
               pg_visible_in_snapshot(l.xid, c.batch) AND (l.xid, l.id) <= (c.after_xid, c.after_id),
               false)
             -- Rows delivered live since done (all of each xid but the last, whose up to live_after_id).
             AND NOT (l.xid = ANY (c.live_xids) AND (
               l.xid <> c.live_xids[array_length(c.live_xids, 1)] OR coalesce(l.id <= c.live_after_id, false)))
        ) AS p
       WHERE ${ids}::text[] IS NULL OR c.id = ANY (${ids}::text[])
       ORDER BY c.id, ch.n`
    const byId = new Map<string, { first: StatusRow; channels: Array<ChannelStatus> }>()
    for (const row of rows) {
      const entry = byId.get(row.id) ?? { first: row, channels: [] }
      entry.channels.push({
        channel: row.channel,
        pending: Number(row.pending),
        oldestPendingAt: row.oldest_pending_at,
        lagSeconds: Math.max(0, row.lag_seconds ?? 0),
        deadLetters: Number(row.dead_letters)
      })
      byId.set(row.id, entry)
    }
    return [...byId.values()].map(({ first, channels }): ConsumerStatus => ({
      id: first.id,
      channels: first.channels,
      state: first.state,
      runningOn: first.running_since === null ? null : {
        host: first.running_host ?? "?",
        pid: first.running_pid ?? 0,
        since: first.running_since,
        backendPid: first.running_backend_pid
      },
      currentError: first.current_log_id === null ? null : {
        logId: BigInt(first.current_log_id),
        attempt: first.current_attempt ?? 1,
        error: first.current_error ?? "",
        since: first.error_since ?? first.updated_at
      },
      handled: Number(first.handled),
      deadLettered: Number(first.dead_lettered),
      lastLogId: first.last_log_id === null ? null : BigInt(first.last_log_id),
      lastLogAt: first.last_log_at,
      updatedAt: first.updated_at,
      lastError: first.last_error,
      pending: channels.reduce((sum, c) => sum + c.pending, 0),
      lagSeconds: channels.reduce((max, c) => Math.max(max, c.lagSeconds), 0),
      deadLetters: channels.reduce((sum, c) => sum + c.deadLetters, 0),
      redeliveries: Number(first.redeliveries),
      deliveryMode: first.delivery_mode,
      byChannel: channels
    }))
  }).pipe(Effect.withSpan("Admin.status"))

/**
 * The fraction (0 to 1) of the server's NOTIFY queue in use: `pg_notification_queue_usage()`.
 * Near 1, commits that NOTIFY start failing; a listener that stopped reading holds it up.
 *
 * @since 0.1.0
 * @category status
 */
export const queueUsage: Effect.Effect<number, SqlError, PgWatch> = Effect.gen(function*() {
  const { sql } = yield* PgWatch
  const [row] = yield* sql<{ usage: number }>`SELECT pg_notification_queue_usage()::float8 AS usage`
  return row!.usage
}).pipe(Effect.withSpan("Admin.queueUsage"))

/**
 * A notification a consumer gave up on.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter {
  readonly consumerId: string
  readonly logId: bigint
  readonly channel: string
  readonly payload: unknown
  /** When the notification was written. */
  readonly createdAt: Date
  /** `permanent`, `invalid-payload` or `retries-exhausted`. */
  readonly reason: string
  readonly error: string
  readonly attempts: number
  readonly failedAt: Date
}

/**
 * Which dead letters: all, one consumer's, and/or those of some log ids.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetterFilter {
  readonly consumerId?: string | undefined
  readonly logIds?: ReadonlyArray<bigint> | undefined
}

interface DeadLetterRow {
  readonly consumer_id: string
  readonly log_id: string
  readonly channel: string
  readonly payload: string
  readonly created_at: Date
  readonly reason: string
  readonly error: string
  readonly attempts: number
  readonly failed_at: Date
}

const knownConsumers = Effect.gen(function*() {
  const { settings, sql } = yield* PgWatch
  const rows = yield* sql<{ id: string; channels: ReadonlyArray<string> }>`
    SELECT id, channels FROM ${sql(settings.schema)}.consumer ORDER BY id`
  return rows
})

const requireConsumer = (consumerId: string) =>
  Effect.gen(function*() {
    const known = yield* knownConsumers
    const found = known.find((row) => row.id === consumerId)
    if (found === undefined) {
      return yield* new AdminError({
        reason: "UnknownConsumer",
        message: known.length === 0
          ? `unknown consumer "${consumerId}": no consumer has registered yet (a consumer registers when it first runs)`
          : `unknown consumer "${consumerId}"; registered consumers: ${known.map((row) => row.id).join(", ")}`
      })
    }
    return found
  })

const logIdStrings = (ids: ReadonlyArray<bigint> | undefined) => ids === undefined ? null : ids.map(String)

/** The ids asked for (each once) that a statement's returned rows do not hold. */
const missingIds = (ids: ReadonlyArray<string>, rows: ReadonlyArray<{ readonly log_id: string }>) => {
  const found = new Set(rows.map((row) => row.log_id))
  return [...new Set(ids)].filter((id) => !found.has(id))
}

/** A statement's returned log ids, in ascending order. */
const sortedLogIds = (rows: ReadonlyArray<{ readonly log_id: string }>) =>
  rows.map((row) => BigInt(row.log_id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))

/**
 * Dead letters, oldest failure first, with the notification they hold. Fails with
 * `UnknownConsumer` when the filter names a consumer that never registered.
 *
 * @since 0.1.0
 * @category dead letters
 */
export const deadLetters = (
  filter: DeadLetterFilter & { readonly limit?: number | undefined } = {}
): Effect.Effect<ReadonlyArray<DeadLetter>, AdminError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    if (filter.consumerId !== undefined) yield* requireConsumer(filter.consumerId)
    const rows = yield* sql<DeadLetterRow>`
      SELECT d.consumer_id, d.log_id::text, l.channel, l.payload::text, l.created_at,
             d.reason, d.error, d.attempts, d.failed_at
        FROM ${schema}.dead_letter d JOIN ${schema}.notification_log l ON l.id = d.log_id
       WHERE (${filter.consumerId ?? null}::text IS NULL OR d.consumer_id = ${filter.consumerId ?? null}::text)
         AND (${logIdStrings(filter.logIds)}::bigint[] IS NULL OR d.log_id = ANY (${logIdStrings(filter.logIds)}::bigint[]))
       ORDER BY d.failed_at, d.consumer_id, d.log_id
       LIMIT ${filter.limit ?? null}::bigint`
    return rows.map((row): DeadLetter => ({
      consumerId: row.consumer_id,
      logId: BigInt(row.log_id),
      channel: row.channel,
      payload: Json.parse(row.payload),
      createdAt: row.created_at,
      reason: row.reason,
      error: row.error,
      attempts: row.attempts,
      failedAt: row.failed_at
    }))
  }).pipe(Effect.withSpan("Admin.deadLetters"))

/**
 * A notification queued for a consumer to handle again.
 *
 * @since 0.1.0
 * @category models
 */
export interface Redelivery {
  readonly consumerId: string
  readonly logId: bigint
}

/**
 * Wakes the channels (inside the caller's transaction, so at commit) with pgwatch's
 * redelivery wake-up, so that their consumers look at the redelivery table at once.
 */
const wakeChannels = (channels: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    if (channels.length === 0) return
    yield* sql`SELECT pg_notify(c, ${sql(settings.schema)}.redelivery_wake_payload())
                 FROM pg_catalog.unnest(${[...new Set(channels)]}::text[]) AS c`
  })

/**
 * Re-drives dead letters: moves those matching the filter (all of them with an empty filter)
 * to the redelivery queue and wakes their consumers' channels, in one transaction. A running
 * consumer handles them again (flagged as replays); one that fails again is dead-lettered
 * again. Returns what was queued. Fails with `UnknownLogIds` when log ids are given and none
 * of them (for the consumer, if named) is a dead letter.
 *
 * @since 0.1.0
 * @category dead letters
 */
export const redrive = (
  filter: DeadLetterFilter = {}
): Effect.Effect<ReadonlyArray<Redelivery>, AdminError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    if (filter.consumerId !== undefined) yield* requireConsumer(filter.consumerId)
    const ids = logIdStrings(filter.logIds)
    const moved = yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<{ consumer_id: string; log_id: string; channels: ReadonlyArray<string> }>`
        WITH gone AS (
          DELETE FROM ${schema}.dead_letter d
           WHERE (${filter.consumerId ?? null}::text IS NULL OR d.consumer_id = ${filter.consumerId ?? null}::text)
             AND (${ids}::bigint[] IS NULL OR d.log_id = ANY (${ids}::bigint[]))
          RETURNING d.consumer_id, d.log_id
        ),
        queued AS (
          INSERT INTO ${schema}.redelivery (consumer_id, log_id)
          SELECT consumer_id, log_id FROM gone
          ON CONFLICT (consumer_id, log_id) DO UPDATE SET requested_at = now()
          RETURNING consumer_id, log_id
        )
        SELECT q.consumer_id, q.log_id::text, c.channels
          FROM queued q JOIN ${schema}.consumer c ON c.id = q.consumer_id
         ORDER BY q.consumer_id, q.log_id`
      if (ids !== null && rows.length === 0) {
        return yield* new AdminError({
          reason: "UnknownLogIds",
          message: `no dead letter with log id ${ids.join(", ")}${
            filter.consumerId === undefined ? "" : ` for consumer "${filter.consumerId}"`
          }`
        })
      }
      yield* wakeChannels(rows.flatMap((row) => row.channels))
      return rows
    }))
    return moved.map((row): Redelivery => ({ consumerId: row.consumer_id, logId: BigInt(row.log_id) }))
  }).pipe(Effect.withSpan("Admin.redrive"))

/**
 * Which notifications to replay to a consumer: given log ids, or everything on its channels
 * written at or after a time.
 *
 * @since 0.1.0
 * @category models
 */
export type ReplaySelection =
  | { readonly consumerId: string; readonly logIds: ReadonlyArray<bigint> }
  | { readonly consumerId: string; readonly since: Date }

/**
 * Marks notifications for the consumer to handle again (the seed admin's "reprocess"): queues
 * them in the redelivery table and wakes the consumer's channels, in one transaction. Its
 * cursor is untouched; a running consumer gets them as replays. Fails with `UnknownConsumer`
 * for a consumer that never registered, and with `UnknownLogIds` (queuing nothing) when a
 * given id is not in the log or not on the consumer's channels. Returns the queued log ids.
 *
 * @since 0.1.0
 * @category replay
 */
export const replay = (
  selection: ReplaySelection
): Effect.Effect<ReadonlyArray<bigint>, AdminError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    const consumer = yield* requireConsumer(selection.consumerId)
    const ids = "logIds" in selection ? selection.logIds.map(String) : null
    const since = "since" in selection ? selection.since : null
    if (ids !== null && ids.length === 0) {
      return yield* new AdminError({ reason: "InvalidArgument", message: "replay: no log ids given" })
    }
    if (since !== null && Number.isNaN(since.getTime())) {
      return yield* new AdminError({ reason: "InvalidArgument", message: "replay: invalid time" })
    }
    const queued = yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<{ log_id: string }>`
        INSERT INTO ${schema}.redelivery (consumer_id, log_id)
        SELECT ${consumer.id}, l.id
          FROM ${schema}.notification_log l
         WHERE l.channel = ANY (${consumer.channels}::text[])
           AND (${ids}::bigint[] IS NULL OR l.id = ANY (${ids}::bigint[]))
           AND (${since}::timestamptz IS NULL OR l.created_at >= ${since}::timestamptz)
        ON CONFLICT (consumer_id, log_id) DO UPDATE SET requested_at = now()
        RETURNING log_id::text`
      if (ids !== null) {
        const missing = missingIds(ids, rows)
        if (missing.length > 0) {
          return yield* new AdminError({
            reason: "UnknownLogIds",
            message: `log id(s) ${missing.join(", ")} not found on the channels of consumer "${consumer.id}" (${
              consumer.channels.join(", ")
            }); nothing was queued`
          })
        }
      }
      if (rows.length > 0) yield* wakeChannels(consumer.channels)
      return rows
    }))
    return sortedLogIds(queued)
  }).pipe(Effect.withSpan("Admin.replay"))

/**
 * Deletes dead letters of a consumer for good: those of the given log ids, or all of them
 * (`logIds` left out). A dead letter keeps its notification from `cleanup`; discarding it lets
 * the notification go. Fails with `UnknownConsumer` for a consumer that never registered, and
 * with `UnknownLogIds` (deleting nothing) when a given id is not one of its dead letters.
 * Returns the log ids discarded.
 *
 * @since 0.1.0
 * @category dead letters
 */
export const discardDeadLetters = (
  selection: { readonly consumerId: string; readonly logIds?: ReadonlyArray<bigint> | undefined }
): Effect.Effect<ReadonlyArray<bigint>, AdminError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    const consumer = yield* requireConsumer(selection.consumerId)
    const ids = logIdStrings(selection.logIds)
    if (ids !== null && ids.length === 0) {
      return yield* new AdminError({ reason: "InvalidArgument", message: "discard: no log ids given" })
    }
    const discarded = yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<{ log_id: string }>`
        DELETE FROM ${schema}.dead_letter
         WHERE consumer_id = ${consumer.id}
           AND (${ids}::bigint[] IS NULL OR log_id = ANY (${ids}::bigint[]))
        RETURNING log_id::text`
      if (ids !== null) {
        const missing = missingIds(ids, rows)
        if (missing.length > 0) {
          return yield* new AdminError({
            reason: "UnknownLogIds",
            message: `no dead letter with log id ${missing.join(", ")} for consumer "${consumer.id}"; nothing was discarded`
          })
        }
      }
      return rows
    }))
    return sortedLogIds(discarded)
  }).pipe(Effect.withSpan("Admin.discardDeadLetters"))

/**
 * What removing a consumer deleted besides its position.
 *
 * @since 0.1.0
 * @category models
 */
export interface Removed {
  readonly consumerId: string
  readonly deadLetters: number
  readonly redeliveries: number
}

/**
 * Removes a consumer: its position, dead letters, queued redeliveries and waiting
 * registrations, in one transaction. What it held back from `cleanup` is then free to go; if
 * it runs again it starts as a new consumer. Fails with `UnknownConsumer` for a consumer that
 * never registered, and with `ConsumerRunning` while a process runs it (stop that first). A
 * consumer marked running whose session is gone (`unknown`: its process died, or runs without a
 * proven listen connection, e.g. behind a transaction pooler) is removed only with `force`.
 *
 * @since 0.1.0
 * @category consumers
 */
export const removeConsumer = (
  consumerId: string,
  options: { readonly force?: boolean | undefined } = {}
): Effect.Effect<Removed, AdminError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    const consumer = yield* requireConsumer(consumerId)
    return yield* sql.withTransaction(Effect.gen(function*() {
      const [row] = yield* sql<{ state: RunState; running_host: string | null; running_pid: number | null }>`
        SELECT ${runState(sql)} AS state, c.running_host, c.running_pid
          FROM ${schema}.consumer c WHERE c.id = ${consumer.id}`
      const running = new AdminError({
        reason: "ConsumerRunning",
        message: `consumer "${consumer.id}" is running (on ${row?.running_host}:${row?.running_pid}); stop it first`
      })
      if (row?.state === "running") return yield* running
      const removable = options.force === true ? ["stopped", "unknown"] : ["stopped"]
      if (row !== undefined && !removable.includes(row.state)) {
        return yield* new AdminError({
          reason: "ConsumerRunning",
          message: `consumer "${consumer.id}" was marked running on ${row.running_host}:${row.running_pid} and the ` +
            "session it held is gone: its process died, or it runs without a listen connection (e.g. behind a " +
            "transaction pooler without listenUrl); if it is gone, remove it with force (pgwatch consumers remove --force)"
        })
      }
      const [counts] = yield* sql<{ dead_letters: string; redeliveries: string }>`
        WITH waiting AS (DELETE FROM ${schema}.waiting WHERE consumer_id = ${consumer.id})
        SELECT (SELECT count(*) FROM ${schema}.dead_letter WHERE consumer_id = ${consumer.id})::text AS dead_letters,
               (SELECT count(*) FROM ${schema}.redelivery WHERE consumer_id = ${consumer.id})::text AS redeliveries`
      // Its dead letters and redeliveries go with it (ON DELETE CASCADE). Checked again as it
      // is deleted (no row lock: that would need UPDATE, which operators do not have).
      const deleted = yield* sql`DELETE FROM ${schema}.consumer c WHERE c.id = ${consumer.id} AND ${runState(sql)} IN ${sql.in(removable)} RETURNING c.id`
      if (deleted.length === 0 && (yield* sql`SELECT 1 FROM ${schema}.consumer WHERE id = ${consumer.id}`).length > 0) {
        return yield* running
      }
      return {
        consumerId: consumer.id,
        deadLetters: Number(counts!.dead_letters),
        redeliveries: Number(counts!.redeliveries)
      } satisfies Removed
    }))
  }).pipe(Effect.withSpan("Admin.removeConsumer"))
