import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as NodeOs from "node:os"
import * as Pg from "pg"
import * as Batcher from "./batcher.js"
import type { StartFrom } from "./cursor.js"
import type { Listener } from "./listener.js"
import * as Snapshot from "./snapshot.js"

/**
 * The writes that mark consumers as running in this process (sql/0007_consumer_state.sql),
 * batched for the whole process: consumers start and stop together, hundreds at a time, and
 * each of these was a round trip per consumer.
 */
export interface Marks {
  /**
   * Registers the consumer if new and marks it running here, with the listen connection's
   * server pid (kept up to date while it runs); returns the time of the mark, which identifies
   * this run.
   */
  readonly start: (consumer: {
    readonly id: string
    readonly channels: ReadonlyArray<string>
    readonly startFrom: StartFrom
  }) => Effect.Effect<string, SqlError>
  /** Clears the run that began at `since` (unless a later run owns the row). */
  readonly stop: (id: string, since: string) => Effect.Effect<void, SqlError>
}

/** The client the marks are written with: the service's. */
export interface MarksClient {
  readonly unsafe: <A extends object>(statement: string, params: ReadonlyArray<string | number>) => Effect.Effect<ReadonlyArray<A>, SqlError>
}

/** This process, as status shows it: host name and OS pid. */
const host = NodeOs.hostname()

/** Calls in one statement at most: bounds its size (a JSON array of this many). */
const MAX_BATCH = 1000

/** Splits a batch into rounds in which each consumer id comes once (an upsert touches a row once per statement). */
const rounds = <A extends { readonly id: string }>(batch: ReadonlyArray<A>): Array<Array<[number, A]>> => {
  const result: Array<Array<[number, A]>> = []
  const seen: Array<Set<string>> = []
  batch.forEach((item, i) => {
    let round = seen.findIndex((ids) => !ids.has(item.id))
    if (round === -1) {
      round = result.length
      result.push([])
      seen.push(new Set())
    }
    result[round]!.push([i, item])
    seen[round]!.add(item.id)
  })
  return result
}

interface Run {
  readonly id: string
  readonly since: string
}

/**
 * The marks of a process. Each (re)connection of the listen connection brings a new server pid
 * (status tells a process that died without cleaning up by it): one subscription for the
 * process, from the first start on (one-shot uses of the service never open the connection),
 * records it for every run at once.
 */
export const make = (
  sql: MarksClient,
  schema: string,
  listener: Pick<Listener, "subscribe">
): Effect.Effect<Marks, never, Scope.Scope> =>
  Effect.gen(function*() {
    const q = Pg.escapeIdentifier(schema)
    const scope = yield* Effect.scope
    /** The runs marked here and not yet stopped, by start time and id. */
    const runs = new Map<string, Run>()
    const runKey = (run: Run) => `${run.since} ${run.id}`
    let listenPid: number | null = null
    const startStatement = `
      INSERT INTO ${q}.consumer AS c (id, channels, done, running_host, running_pid, running_since, running_backend_pid)
      SELECT v.id, v.channels,
             CASE WHEN v.now THEN pg_catalog.pg_current_snapshot() ELSE '${Snapshot.beginning}'::pg_snapshot END,
             $2, $3, pg_catalog.clock_timestamp(), v.pid
        FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS v(id text, channels text[], now boolean, pid integer)
      ON CONFLICT (id) DO UPDATE
         SET channels = excluded.channels, running_host = excluded.running_host, running_pid = excluded.running_pid,
             running_since = excluded.running_since, running_backend_pid = excluded.running_backend_pid,
             current_error = NULL, current_attempt = NULL, current_log_id = NULL, error_since = NULL
      RETURNING c.id, c.running_since::text AS since`

    const start = yield* Batcher.make((batch: ReadonlyArray<Parameters<Marks["start"]>[0] & { readonly pid: number | null }>) =>
      Effect.map(
        Effect.forEach(rounds(batch), (round) =>
          Effect.map(
            sql.unsafe<{ id: string; since: string }>(startStatement, [
              JSON.stringify(round.map(([, c]) => ({ id: c.id, channels: c.channels, now: c.startFrom === "now", pid: c.pid }))),
              host,
              process.pid
            ]),
            (rows) => {
              const since = new Map(rows.map((row) => [row.id, row.since]))
              return round.map(([i, c]) => [i, since.get(c.id)!] as const)
            }
          )),
        (results) => {
          const sinces = new Array<string>(batch.length)
          for (const [i, since] of results.flat()) sinces[i] = since
          return sinces
        }
      ), MAX_BATCH)

    const listening = yield* Batcher.make((batch: ReadonlyArray<Run & { readonly pid: number }>) =>
      Effect.as(
        sql.unsafe(
          `UPDATE ${q}.consumer AS c SET running_backend_pid = v.pid
             FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS v(id text, since timestamptz, pid integer)
            WHERE c.id = v.id AND c.running_since = v.since`,
          [JSON.stringify(batch)]
        ),
        batch.map(() => undefined)
      ), MAX_BATCH)
    const recordPid = (these: ReadonlyArray<Run>, pid: number) =>
      Effect.forEach(these, (run) => listening({ ...run, pid }), { concurrency: "unbounded", discard: true }).pipe(
        Effect.catchAllCause((cause) => Effect.logDebug("pgwatch: could not record the listen connection", cause))
      )

    // Subscribed once, by the first caller; the others wait for it, so that the listen
    // connection is up (or its first attempt over) before any consumer subscribes.
    const follow = yield* Effect.cached(Effect.flatMap(Scope.extend(listener.subscribe([]), scope), (events) =>
      Effect.forkIn(
        Effect.forever(Effect.flatMap(events.take, (event) => {
          if (event._tag !== "Listening") return Effect.void
          listenPid = event.pid
          return recordPid([...runs.values()], event.pid)
        })),
        scope
      )))

    const stop = yield* Batcher.make((batch: ReadonlyArray<{ id: string; since: string }>) =>
      Effect.as(
        sql.unsafe(
          `UPDATE ${q}.consumer AS c
              SET running_host = NULL, running_pid = NULL, running_since = NULL, running_backend_pid = NULL,
                  current_error = NULL, current_attempt = NULL, current_log_id = NULL, error_since = NULL
             FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS v(id text, since timestamptz)
            WHERE c.id = v.id AND c.running_since = v.since`,
          [JSON.stringify(batch)]
        ),
        batch.map(() => undefined)
      ), MAX_BATCH)

    return {
      start: (consumer) =>
        Effect.gen(function*() {
          yield* follow
          const pid = listenPid
          const since = yield* start({ ...consumer, pid })
          const run = { id: consumer.id, since }
          runs.set(runKey(run), run)
          // The listen connection changed while the mark was being written.
          if (listenPid !== null && listenPid !== pid) yield* recordPid([run], listenPid)
          return since
        }),
      stop: (id, since) => Effect.suspend(() => {
        runs.delete(runKey({ id, since }))
        return stop({ id, since })
      })
    } satisfies Marks
  })
