import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Json from "../Json.js"
import { retryIdempotent } from "./connectionLoss.js"
import type { Cursor } from "./cursor.js"
import type { Listener, ListenerEvent } from "./listener.js"
import * as Pages from "./pages.js"
import type * as Poller from "./poller.js"
import * as ReaderState from "./readerState.js"

/** A notification plus what handling it moves: the cursor, or a redelivery request. */
export type Delivery = ReaderState.Delivery

export interface ReaderOptions {
  readonly schema: string
  readonly consumerId: string
  readonly channels: ReadonlyArray<string>
  /** Channels whose live rows must come without payloads (ids only). */
  readonly confidential: ReadonlyArray<string>
  readonly start: Cursor
  readonly pageSize: number
  /** Payload bytes per page; a row larger than this comes alone. */
  readonly pageBytes: number
  /** The longest a caught-up reader waits without a wake-up before it looks again. */
  readonly pollInterval: Duration.Duration
  /** The same while no wake-ups can come (no proven listen connection). */
  readonly fallbackPollInterval: Duration.Duration
  /** The pause between partial pages while rows keep coming. */
  readonly busyReadInterval: Duration.Duration
  readonly listener: Listener
  /** Commits/s above which the reader polls; `ReaderState.KEEP_UP_RATE` unless a test lowers it. */
  readonly keepUpRate?: number | undefined
  /** The process's shared page reads. */
  readonly pages?: Pages.SharedPages | undefined
  /**
   * The process poll: while it watches for this reader, the reader's own poll timers are only a
   * safety net, `POLLER_SAFETY` times longer.
   */
  readonly poller?: Poller.Poller | undefined
  /** Completed once the channels are subscribed (LISTENed, if the connection is up). */
  readonly subscribed?: Deferred.Deferred<void> | undefined
}

interface RedeliveryRow {
  readonly id: string
  readonly channel: string
  readonly payload: string
  readonly created_at: Date
  readonly requested_at: string
}

interface LogRow {
  readonly id: string
  readonly channel: string
  /** The jsonb as text: `Json.parse` keeps its numbers exact. */
  readonly payload: string
  readonly created_at: Date
  readonly xid: string
}

const LAST_ID = "9223372036854775807"

/** How much longer a reader's own poll timers are while the process poll watches for it. */
const POLLER_SAFETY = 12

/**
 * Every notification on the channels from `start` on, each once: the merged stream of the
 * design, deduplicated against the cursor.
 *
 * - playback: pages of what became visible since the cursor's snapshot, read without waiting
 *   while there is a backlog;
 * - live: once caught up (`ReaderState.isLive`), verified rows straight from the listen
 *   connection, in commit order; a row whose NOTIFY left its payload out, or a "read xid",
 *   is fetched from the log by (channel, xid, id);
 * - backfill: the same page reads, on the poll timer, a wake-up, a reconnect, while
 *   registration suspects remain, after an overflow of live rows, and when the live set
 *   reaches its bound. A row found only by backfill (its NOTIFY was lost) can come after
 *   rows committed later.
 *
 * Every decision (register, read, wait, drop a duplicate, move the cursor) is
 * `ReaderState`'s; this module performs them. Rows written before the consumer was listening
 * are flagged as replays; redeliveries requested for the consumer come out of band.
 */
export const stream = (options: ReaderOptions): Stream.Stream<Delivery, SqlError, SqlClient.SqlClient> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = sql(options.schema)
    const events = yield* options.listener.subscribe(options.channels)
    if (options.subscribed !== undefined) yield* Deferred.succeed(options.subscribed, undefined)

    // The process poll finds what this reader's own poll would (rows its position has not
    // delivered, redeliveries) for all consumers of the process in one statement, and wakes it.
    const poll = options.poller === undefined ? undefined : yield* options.poller.watch(options.consumerId, options.channels)
    if (poll !== undefined) {
      yield* Effect.forkScoped(Effect.forever(Effect.map(poll.due, (due) =>
        events.offer({ _tag: "Wake", channel: options.channels[0]!, redelivery: due === "redeliveries" }))))
    }
    const safety = poll === undefined ? 1 : POLLER_SAFETY
    let state = ReaderState.make({
      pageSize: options.pageSize,
      pollInterval: Duration.toMillis(options.pollInterval) * safety,
      fallbackPollInterval: Duration.toMillis(options.fallbackPollInterval) * safety,
      busyReadInterval: Duration.toMillis(options.busyReadInterval),
      keepUpRate: options.keepUpRate ?? ReaderState.KEEP_UP_RATE
    }, options.start)
    // Events taken from the listener, the first `stepped` of them handled (live work waits on a fetch).
    let taken: ReadonlyArray<ListenerEvent> = []
    let stepped = 0
    // Redelivery requests emitted and not yet cleared (by log id and request time).
    const redelivered = new Set<string>()

    // Every statement here is safe to repeat: one that meets a pooled connection the server
    // has just ended (an idle time-out) runs again on a fresh one instead of failing the consumer.
    const unregister = retryIdempotent(sql`DELETE FROM ${schema}.waiting WHERE consumer_id = ${options.consumerId}`)
    const perform = (command: ReaderState.Command): Effect.Effect<unknown, SqlError> => {
      switch (command._tag) {
        case "Register":
          return retryIdempotent(sql`INSERT INTO ${schema}.waiting (channel, consumer_id, backend_pid, payloads)
              SELECT c, ${options.consumerId}, ${command.pid}, c <> ALL (${options.confidential}::text[])
                FROM pg_catalog.unnest(${options.channels}::text[]) AS c
              ON CONFLICT (channel, consumer_id) DO UPDATE SET backend_pid = excluded.backend_pid, payloads = excluded.payloads`)
        case "Unregister":
          return unregister
        case "WriteMode":
          return retryIdempotent(
            sql`UPDATE ${schema}.consumer SET delivery_mode = ${command.mode} WHERE id = ${options.consumerId}`
          )
      }
    }
    yield* Effect.addFinalizer(() => unregister.pipe(Effect.interruptible, Effect.timeout("2 seconds"), Effect.ignore))

    const apply = (input: ReaderState.Input) =>
      Effect.suspend(() => {
        const result = ReaderState.step(state, input)
        state = result.state
        if (poll !== undefined && state.cursor.batch === null) poll.publish(state.cursor.done, state.cursor.live, state.cursor.liveAfterId)
        return Effect.as(Effect.forEach(result.commands, perform, { discard: true }), result.deliveries)
      })

    /** Steps the events already queued, until live work needs a read of the log. */
    const drain = Effect.gen(function*() {
      const out: Array<Delivery> = []
      while (state.fetching === undefined) {
        if (stepped === taken.length) {
          taken = yield* events.takeAll
          stepped = 0
        }
        const event = taken[stepped]
        if (event === undefined) break
        stepped += 1
        out.push(...yield* apply({ _tag: "Event", event, now: yield* Clock.currentTimeMillis }))
      }
      return out
    })

    const playbackOrBackfill = (cursor: Cursor) =>
      Pages.read({
        schema: options.schema,
        channels: options.channels,
        cursor,
        pageSize: options.pageSize,
        pageBytes: options.pageBytes,
        shared: options.pages,
        // After a busy pause, unregistered: no wake-up, registration or LISTEN that the new
        // batch must cover, so another consumer's slightly older snapshot serves as well.
        acceptEarlierBatch: state.pausedBusy && !state.registered
      })

    /** Rows of one live transaction on the channels, by the (channel, xid, id) index. */
    const fetchLive = (fetch: ReaderState.Fetch) =>
      retryIdempotent(sql<LogRow>`
        SELECT l.id::text, l.channel, l.payload::text AS payload, l.created_at, l.xid::text
          FROM pg_catalog.unnest(${options.channels}::text[]) AS c(name)
          CROSS JOIN LATERAL (
            SELECT * FROM ${schema}.notification_log l
             WHERE l.channel = c.name AND l.xid = ${fetch.xid}::xid8
               AND l.id > ${String(fetch.afterId)}::bigint AND l.id <= ${String(fetch.untilId ?? LAST_ID)}::bigint
             ORDER BY l.xid, l.id
             LIMIT ${options.pageSize}
          ) AS l
         ORDER BY l.id
         LIMIT ${options.pageSize}`).pipe(
        Effect.map((rows) =>
          rows.map((row): ReaderState.FetchedRow => ({
            id: BigInt(row.id),
            channel: row.channel,
            payload: Json.parse(row.payload),
            createdAt: row.created_at,
            xid: row.xid
          }))
        )
      )

    const readRedeliveries = Effect.gen(function*() {
      const rows = yield* retryIdempotent(sql<RedeliveryRow>`
        SELECT l.id::text, l.channel, l.payload::text, l.created_at, r.requested_at::text
          FROM ${schema}.redelivery r JOIN ${schema}.notification_log l ON l.id = r.log_id
         WHERE r.consumer_id = ${options.consumerId}
         ORDER BY r.log_id
         LIMIT ${options.pageSize}`)
      const pending = new Set(rows.map((row) => `${row.id}@${row.requested_at}`))
      // Requests no longer in the table were handled and cleared: forget them.
      for (const key of redelivered) if (!pending.has(key)) redelivered.delete(key)
      return rows.filter((row) => !redelivered.has(`${row.id}@${row.requested_at}`)).map((row): Delivery => {
        redelivered.add(`${row.id}@${row.requested_at}`)
        return {
          id: BigInt(row.id),
          channel: row.channel,
          payload: Json.parse(row.payload),
          createdAt: row.created_at,
          isReplay: true,
          cursor: Option.none(),
          redelivery: Option.some({ logId: BigInt(row.id), requestedAt: row.requested_at })
        }
      })
    })

    /** Waits until `until`, or (`endedByEvents`) until a listener event is pending. */
    const wait = (until: number, endedByEvents: boolean, now: number) => {
      const sleep = Effect.sleep(Duration.millis(until - now))
      // Waiting takes nothing, so the timer cutting it short loses no event.
      return Effect.as(endedByEvents ? Effect.raceFirst(events.waitPending, sleep) : sleep, [])
    }

    /**
     * One action of the reader, after what arrived live: a steady flow of live rows must not
     * hold off a read that is due (the poll timer, a full live set).
     */
    const next: Effect.Effect<ReadonlyArray<Delivery>, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
      const live = yield* drain
      const now = yield* Clock.currentTimeMillis
      const planned = ReaderState.plan(state, now)
      if (planned.action._tag === "Wait" && live.length > 0) return live
      state = planned.state
      yield* Effect.forEach(planned.commands, perform, { discard: true })
      const { action } = planned
      const result = yield* act(action, now)
      return live.length === 0 ? result : [...live, ...result]
    })

    const act = (action: ReaderState.Action, now: number) =>
      Effect.gen(function*() {
        switch (action._tag) {
          case "Wait":
            return yield* wait(action.until, action.events, now)
          case "ReadRedeliveries":
            return yield* readRedeliveries
          case "ReadPage": {
            const page = yield* playbackOrBackfill(action.cursor)
            return yield* apply({ _tag: "Page", page, now: yield* Clock.currentTimeMillis })
          }
          case "Fetch": {
            const rows = yield* fetchLive(action.fetch)
            return yield* apply({ _tag: "Fetched", rows, now: yield* Clock.currentTimeMillis })
          }
        }
      })

    // The merged stream: each pull runs actions until some rows are to be delivered.
    const pull = Effect.map(
      Effect.repeat(next, { until: (deliveries) => deliveries.length > 0 }),
      Chunk.unsafeFromArray
    )

    return Stream.repeatEffectChunk(pull)
  }))
