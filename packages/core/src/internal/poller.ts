import type { SqlError } from "@effect/sql/SqlError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as FiberId from "effect/FiberId"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Pg from "pg"
import type { Listener } from "./listener.js"

/**
 * What the process poll found for a consumer: rows visible now that its published position has
 * not delivered, or redeliveries requested for it (rows may then be due as well).
 */
export type Due = "rows" | "redeliveries"

/** A consumer's place in the process poll. */
export interface PollHandle {
  /**
   * The reader's position after each read: its done snapshot, the xids it got live since (may
   * be empty), all of whose rows it had but the last's, which it had up to `liveAfterId`.
   */
  readonly publish: (done: string, live: ReadonlyArray<string>, liveAfterId: string) => void
  /** Waits until the process poll finds, for this consumer, rows visible now and not in its published position, or pending redeliveries. */
  readonly due: Effect.Effect<Due>
}

/**
 * One poll per process: every `pollInterval`, one statement looks at the log and the
 * redelivery table for all watched consumers at once, so idle consumers cost one query per
 * interval between them rather than two each. It is the gap backfill of caught-up readers: a
 * row whose wake-up was lost is found here.
 */
export interface Poller {
  /** Polls for the consumer while the scope is open, from its first `publish` on. */
  readonly watch: (consumerId: string, channels: ReadonlyArray<string>) => Effect.Effect<PollHandle, never, Scope.Scope>
}

interface Entry {
  readonly consumerId: string
  readonly channels: ReadonlyArray<string>
  /** None until the reader publishes its first position. */
  position: { readonly done: string; readonly live: ReadonlyArray<string>; readonly liveAfterId: string } | undefined
  /** Bumped by each publish: a finding for an older position is stale. */
  version: number
  /** What a poll found that no `due` has taken yet. */
  found: Due | undefined
  waiter: Deferred.Deferred<Due> | undefined
}

interface PollRow {
  readonly i: number
  readonly rows: boolean
  readonly redeliveries: boolean
}

export interface PollerOptions {
  /** Runs the poll statement: the service's client. */
  readonly sql: {
    readonly unsafe: <A extends object>(statement: string, params: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<A>, SqlError>
  }
  readonly schema: string
  readonly pollInterval: Duration.Duration
  /** The interval while no wake-ups can come: the listen connection is lost or cannot deliver. */
  readonly fallbackPollInterval: Duration.Duration
  /** The process's listen connection, whose state sets the interval. */
  readonly listener: Pick<Listener, "subscribe">
}

/**
 * Whether each consumer has work: per distinct (channels, done, live), rows not visible in done
 * (in its in-progress list, or at or past its xmax), visible in the statement's snapshot, and
 * not among the rows it got live; each an index probe on (channel, xid, id), stopped at the
 * first row. Consumers at the same position share one probe.
 */
/** Whether the reader had row `n` live: its xid is in the live set, and is not the last or is up to its id. */
const had = (p: string) =>
  `(n.xid = ANY (${p}.l::xid8[]) AND (n.xid <> (${p}.l::xid8[])[pg_catalog.cardinality(${p}.l)] OR n.id <= ${p}.a::bigint))`

const pollStatement = (schema: string) => {
  const q = Pg.escapeIdentifier(schema)
  return `
    WITH w AS (
      SELECT * FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS w(i int, id text, c text[], d text, l text[], a text)
    ),
    p AS (
      SELECT c, d, l, a, EXISTS (
        SELECT 1 FROM pg_catalog.unnest(p.c) AS ch(name)
         WHERE EXISTS (
                 SELECT 1 FROM pg_catalog.pg_snapshot_xip(p.d::pg_snapshot) AS x(xid)
                   JOIN ${q}.notification_log n ON n.channel = ch.name AND n.xid = x.xid
                  WHERE pg_catalog.pg_visible_in_snapshot(n.xid, pg_catalog.pg_current_snapshot())
                    AND NOT ${had("p")})
            OR EXISTS (
                 SELECT 1 FROM ${q}.notification_log n
                  WHERE n.channel = ch.name AND n.xid >= pg_catalog.pg_snapshot_xmax(p.d::pg_snapshot)
                    AND pg_catalog.pg_visible_in_snapshot(n.xid, pg_catalog.pg_current_snapshot())
                    AND NOT ${had("p")})
      ) AS rows
        FROM (SELECT DISTINCT c, d, l, a FROM w) AS p
    )
    SELECT w.i, p.rows,
           EXISTS (SELECT 1 FROM ${q}.redelivery rd WHERE rd.consumer_id = w.id) AS redeliveries
      FROM w JOIN p ON p.c = w.c AND p.d = w.d AND p.l = w.l AND p.a = w.a`
}

/**
 * The process poller: a fiber in the scope that, after a random fraction of the interval (so
 * that processes started together do not poll together), runs one statement per interval for
 * every consumer that has published a position, and wakes those with work: every
 * `pollInterval` while the listen connection delivers wake-ups, else every
 * `fallbackPollInterval`. A failed poll is logged and the next one tried an interval later.
 * The first `watch` subscribes to the listen connection (one-shot uses of the service never
 * open it).
 */
export const make = (options: PollerOptions): Effect.Effect<Poller, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { sql } = options
    const entries = new Set<Entry>()
    const statement = pollStatement(options.schema)

    const fire = (entry: Entry, due: Due) => {
      const waiter = entry.waiter
      if (waiter === undefined) {
        entry.found = entry.found === "redeliveries" ? entry.found : due
        return Effect.void
      }
      entry.waiter = undefined
      return Deferred.succeed(waiter, due)
    }

    const pollOnce = Effect.suspend(() => {
      const polled = [...entries].filter((entry) => entry.position !== undefined)
      if (polled.length === 0) return Effect.void
      const versions = polled.map((entry) => entry.version)
      const input = JSON.stringify(polled.map((entry, i) => ({
        i,
        id: entry.consumerId,
        c: entry.channels,
        d: entry.position!.done,
        l: entry.position!.live,
        a: entry.position!.liveAfterId
      })))
      return Effect.flatMap(sql.unsafe<PollRow>(statement, [input]), (rows) =>
        Effect.forEach(rows, (row) => {
          const entry = polled[row.i]!
          // Redeliveries stay due until handled; rows only if the reader has not read since.
          if (row.redeliveries) return fire(entry, "redeliveries")
          if (row.rows && entry.version === versions[row.i] && entries.has(entry)) return fire(entry, "rows")
          return Effect.void
        }, { discard: true }))
    })

    // Until the listen connection proves it delivers, and after it is lost, no wake-ups come:
    // readers then rely on this poll alone, at the short interval. One statement for all of
    // them, where each polling on its own would swamp a small pool (and with it the listen
    // connection's own delivery probe, which goes through the pool).
    let listening = false
    const changed = yield* Queue.sliding<void>(1)
    const scope = yield* Effect.scope
    // Subscribed once, by the first caller; the others wait for it.
    const follow = yield* Effect.cached(Effect.flatMap(Scope.extend(options.listener.subscribe([]), scope), (events) =>
      Effect.forkIn(
        Effect.forever(Effect.flatMap(events.take, (event) => {
          if (event._tag !== "Listening" && event._tag !== "Lost") return Effect.void
          const lost = listening && event._tag === "Lost"
          listening = event._tag === "Listening"
          // Lost: poll at once and then often; Listening: the next wait is the long one.
          return lost ? Queue.offer(changed, undefined) : Effect.void
        })),
        scope
      )))
    const nextPoll = Effect.suspend(() =>
      Effect.raceFirst(
        Effect.sleep(listening ? options.pollInterval : options.fallbackPollInterval),
        Queue.take(changed)
      )
    )

    const interval = Duration.toMillis(options.pollInterval)
    yield* Effect.forkScoped(Effect.gen(function*() {
      yield* Effect.sleep(Duration.millis(Math.floor((yield* Random.next) * interval)))
      yield* Effect.forever(Effect.zipRight(
        pollOnce.pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("pgwatch: the process poll failed; trying again next interval", cause))
        ),
        nextPoll
      ))
    }))

    const watch = (consumerId: string, channels: ReadonlyArray<string>) =>
      Effect.zipRight(follow, Effect.acquireRelease(
        Effect.sync((): Entry => {
          const entry: Entry = { consumerId, channels, position: undefined, version: 0, found: undefined, waiter: undefined }
          entries.add(entry)
          return entry
        }),
        (entry) => Effect.sync(() => entries.delete(entry))
      ).pipe(Effect.map((entry): PollHandle => ({
        publish: (done, live, liveAfterId) => {
          entry.position = { done, live, liveAfterId }
          entry.version += 1
          if (entry.found === "rows") entry.found = undefined
        },
        due: Effect.suspend(() => {
          if (entry.found !== undefined) {
            const found = entry.found
            entry.found = undefined
            return Effect.succeed(found)
          }
          return Deferred.await(entry.waiter ??= Deferred.unsafeMake<Due>(FiberId.none))
        })
      }))))

    return { watch } satisfies Poller
  })
