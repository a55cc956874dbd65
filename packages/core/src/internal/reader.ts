import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as Json from "../Json.js"
import type { Notification } from "../Notification.js"
import { retryIdempotent } from "./connectionLoss.js"
import type { Cursor } from "./cursor.js"
import type { Listener, ListenerEvent } from "./listener.js"
import * as Pages from "./pages.js"
import * as Snapshot from "./snapshot.js"

/** A notification plus what handling it moves: the cursor, or a redelivery request. */
export interface Delivery extends Notification<unknown> {
  /** The position right after this row; none for a redelivery. */
  readonly cursor: Option.Option<Cursor>
  /** The request this answers, for a redelivery (by its log id and request time). */
  readonly redelivery: Option.Option<{ readonly logId: bigint; readonly requestedAt: string }>
}

export interface ReaderOptions {
  readonly schema: string
  readonly consumerId: string
  readonly channels: ReadonlyArray<string>
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
  /** The process's shared page reads. */
  readonly pages?: Pages.SharedPages | undefined
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

/** How new rows reach a reader (`consumer.delivery_mode`, shown by `status`). */
type DeliveryMode = "wake-ups" | "polling"

const SHORTEST_RECHECK = Duration.millis(1)

/**
 * Below this rate (commits/s on the reader's channels) a wake-up per commit is cheap for
 * writers and gives the lowest latency; above it the reader polls. A registered reader
 * measures the rate by its wake-ups; a polling one by the rows a busy pause gathers.
 */
const KEEP_UP_RATE = 1000

/** The window over which a registered reader counts its wake-ups against that rate. */
const RATE_WINDOW_MS = 100

/**
 * Every notification on the channels from `start` on, in commit-visibility order, each once.
 *
 * Playback and live delivery are one loop over the log: a page is what became visible since
 * the cursor's snapshot. While there is a backlog the loop pages through it without waiting;
 * once caught up it registers as waiting (so producers send a NOTIFY) and sleeps until a
 * wake-up, a reconnect, or the poll interval, which doubles as the gap backfill: a row whose
 * wake-up was lost is found at the next poll. Rows written before the consumer was listening
 * (at start, and again after a lost connection) are flagged as replays.
 *
 * Waiting is registered in a table that producers check. A producer that checked just before
 * the registration committed sent no NOTIFY; its transaction was then running, so it is in the
 * next snapshot's in-progress list. Until those "suspects" have finished, the loop re-checks
 * on a short, doubling delay instead of sleeping. When wake-ups come faster than KEEP_UP_RATE,
 * they cost writers more than they are worth: it unregisters (so writers stop paying for
 * NOTIFY) and polls, pausing between partial pages, until the rows one pause gathers show the
 * rate has fallen below KEEP_UP_RATE.
 */
export const stream = (options: ReaderOptions): Stream.Stream<Delivery, SqlError, SqlClient.SqlClient> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = sql(options.schema)
    const events = yield* options.listener.subscribe(options.channels)
    if (options.subscribed !== undefined) yield* Deferred.succeed(options.subscribed, undefined)

    let cursor = options.start
    let replaying = true
    let listenPid: number | undefined
    let lostConnection = false
    // Whether the batch being read began after our channels were LISTENed: once such a batch
    // is complete, everything written before we listened has been played back.
    let batchStartedListening = false
    let registered = false
    let suspects: ReadonlySet<string> | undefined
    let lastPageHadRows = false
    // Wake-ups in the current rate window, and whether the last window was over the rate.
    let windowStart = 0
    let windowWakes = 0
    let tooFrequent = false
    // Whether a wake-up came after the batch being paged through took its snapshot: its rows
    // may not be in that batch, so the next batch must be read at once.
    let wokenDuringBatch = false
    // Whether the read under way follows a busy pause (so its rows measure the writers' rate).
    let pausedBusy = false
    let recheck = SHORTEST_RECHECK
    let waitFor: Duration.Duration | undefined
    let redeliveriesDueAt = 0
    // How new rows reach this reader, for `status`: as it is, and as last written.
    let deliveryMode: DeliveryMode = "polling"
    let writtenMode: DeliveryMode | undefined
    const quietPageRows = Math.max(1, Math.floor(Duration.toSeconds(options.busyReadInterval) * KEEP_UP_RATE))
    // Redelivery requests emitted and not yet cleared (by log id and request time).
    const redelivered = new Set<string>()

    // Every statement here is safe to repeat: one that meets a pooled connection the server
    // has just ended (an idle time-out) runs again on a fresh one instead of failing the consumer.
    const register = (pid: number) =>
      retryIdempotent(sql`INSERT INTO ${schema}.waiting (channel, consumer_id, backend_pid)
          SELECT c, ${options.consumerId}, ${pid} FROM pg_catalog.unnest(${options.channels}::text[]) AS c
          ON CONFLICT (channel, consumer_id) DO UPDATE SET backend_pid = excluded.backend_pid`)
    const unregister = retryIdempotent(sql`DELETE FROM ${schema}.waiting WHERE consumer_id = ${options.consumerId}`)
    const writeDeliveryMode = Effect.suspend(() => {
      if (writtenMode === deliveryMode) return Effect.void
      const mode = deliveryMode
      return retryIdempotent(sql`UPDATE ${schema}.consumer SET delivery_mode = ${mode} WHERE id = ${options.consumerId}`).pipe(
        Effect.zipRight(Effect.sync(() => {
          writtenMode = mode
        }))
      )
    })
    // While no wake-ups can come, a caught-up reader looks at the log more often.
    const idlePoll = () => listenPid === undefined ? options.fallbackPollInterval : options.pollInterval
    yield* Effect.addFinalizer(() => unregister.pipe(Effect.interruptible, Effect.timeout("2 seconds"), Effect.ignore))

    const onEvent = (event: ListenerEvent) => {
      switch (event._tag) {
        case "Listening":
          // After a lost connection, what was written meanwhile is played back as missed.
          if (lostConnection) replaying = true
          lostConnection = false
          listenPid = event.pid
          registered = false
          waitFor = undefined
          redeliveriesDueAt = 0
          deliveryMode = "wake-ups"
          break
        case "Lost":
          lostConnection = true
          listenPid = undefined
          registered = false
          deliveryMode = "polling"
          break
        case "Wake":
          windowWakes += 1
          wokenDuringBatch = true
          if (event.redelivery) redeliveriesDueAt = 0
      }
    }

    const drainEvents = Effect.map(Queue.takeAll(events), Chunk.forEach(onEvent))

    const wait = (duration: Duration.Duration) =>
      Effect.raceFirst(
        Effect.map(Queue.take(events), onEvent),
        Effect.sleep(duration)
      ).pipe(Effect.zipRight(drainEvents))

    const readPage = Effect.gen(function*() {
      if (cursor.batch === null) {
        batchStartedListening = listenPid !== undefined
        // This read takes a new snapshot, which covers every wake-up handled so far.
        wokenDuringBatch = false
      }
      const { batch, complete, rows: found } = yield* Pages.read({
        schema: options.schema,
        channels: options.channels,
        cursor,
        pageSize: options.pageSize,
        pageBytes: options.pageBytes,
        shared: options.pages,
        // Polling: no wake-up or LISTEN the new batch must cover.
        acceptEarlierBatch: pausedBusy
      })
      const deliveries = found.map((row, i): Delivery => {
        const last = complete && i === found.length - 1
        const after: Cursor = last
          ? { done: batch, batch: null, afterXid: "0", afterId: "0" }
          : { done: cursor.done, batch, afterXid: row.xid, afterId: String(row.id) }
        return {
          id: row.id,
          channel: row.channel,
          payload: row.payload,
          createdAt: row.createdAt,
          isReplay: replaying,
          cursor: Option.some(after),
          redelivery: Option.none()
        }
      })
      if (complete && batchStartedListening) replaying = false
      const lastRow = found.at(-1)
      cursor = complete
        ? { done: batch, batch: null, afterXid: "0", afterId: "0" }
        : { done: cursor.done, batch, afterXid: lastRow!.xid, afterId: String(lastRow!.id) }
      return { deliveries, complete, inProgress: Snapshot.inProgress(batch) }
    })

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

    // Decides how long to wait after a page, and keeps the waiting registration in step.
    const afterPage = (page: { readonly deliveries: ReadonlyArray<Delivery>; readonly complete: boolean; readonly inProgress: ReadonlyArray<string> }) =>
      Effect.gen(function*() {
        if (registered && page.complete) {
          suspects = suspects === undefined
            ? new Set(page.inProgress)
            : new Set(page.inProgress.filter((xid) => suspects!.has(xid)))
        }
        const settled = registered && suspects !== undefined && suspects.size === 0
        if (settled) recheck = SHORTEST_RECHECK
        // Polling, but a last page this small means writers have slowed to a rate that
        // wake-ups serve well: ask for them again rather than pausing.
        const slowedDown = pausedBusy && !registered && page.complete && page.deliveries.length < quietPageRows
        lastPageHadRows = page.deliveries.length > 0
        const now = yield* Clock.currentTimeMillis
        if (now - windowStart >= RATE_WINDOW_MS) {
          tooFrequent = registered && (windowWakes * 1000) / (now - windowStart) > KEEP_UP_RATE
          windowStart = now
          windowWakes = 0
        }
        if (lastPageHadRows && !(slowedDown && listenPid !== undefined)) {
          // Caught up and registered: anything newer wakes us. Busy (unregistered): a short
          // pause between partial pages lets rows gather: fewer, fuller reads, and the
          // server's time goes to the writers.
          waitFor = !page.complete || (registered && wokenDuringBatch)
            ? undefined
            : settled
            ? idlePoll()
            : registered
            ? recheckDelay()
            : options.busyReadInterval
          return
        }
        if (listenPid !== undefined && !registered) {
          yield* register(listenPid)
          registered = true
          suspects = undefined
          waitFor = undefined
        } else if (registered && !settled) {
          waitFor = recheckDelay()
        } else {
          waitFor = idlePoll()
        }
      })

    // Until every transaction that may have missed our registration has finished: re-read
    // on a short, doubling delay.
    const recheckDelay = () => {
      const delay = Duration.min(recheck, options.pollInterval)
      recheck = Duration.times(recheck, 2)
      return delay
    }

    const pull = Effect.gen(function*() {
      if (waitFor !== undefined) {
        // Wake-ups (commits) come faster than KEEP_UP_RATE: stop asking writers to NOTIFY
        // and read on by polling. Slower writers keep their immediate wake-ups.
        if (registered && lastPageHadRows && tooFrequent) {
          yield* unregister
          registered = false
          tooFrequent = false
          waitFor = options.busyReadInterval
        }
        // Busy: a plain pause, which late wake-ups from writers that still saw our
        // registration must not cut short (events are handled after it).
        pausedBusy = !registered && waitFor === options.busyReadInterval
        yield* pausedBusy ? Effect.sleep(waitFor) : wait(waitFor)
        waitFor = undefined
      } else {
        pausedBusy = false
      }
      yield* drainEvents
      yield* writeDeliveryMode
      const now = yield* Clock.currentTimeMillis
      if (now >= redeliveriesDueAt) {
        redeliveriesDueAt = now + Duration.toMillis(options.pollInterval)
        const redeliveries = yield* readRedeliveries
        if (redeliveries.length > 0) return Chunk.unsafeFromArray(redeliveries)
      }
      const page = yield* readPage
      yield* afterPage(page)
      return Chunk.unsafeFromArray(page.deliveries)
    })

    return Stream.repeatEffectChunk(pull)
  }))
