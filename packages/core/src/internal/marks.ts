import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as NodeOs from "node:os"
import * as Pg from "pg"
import * as Batcher from "./batcher.js"
import type { StartFrom } from "./cursor.js"
import * as Snapshot from "./snapshot.js"

/**
 * The writes that mark consumers as running in this process (sql/0007_consumer_state.sql),
 * batched for the whole process: consumers start and stop together, hundreds at a time, and
 * each of these was a round trip per consumer.
 */
export interface Marks {
  /** Registers the consumer if new and marks it running here; the time of the mark, which identifies this run. */
  readonly start: (consumer: {
    readonly id: string
    readonly channels: ReadonlyArray<string>
    readonly startFrom: StartFrom
  }) => Effect.Effect<string, SqlError>
  /** Records the listen connection's server pid for the run that began at `since`. */
  readonly listening: (id: string, since: string, backendPid: number) => Effect.Effect<void, SqlError>
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

export const make = (sql: MarksClient, schema: string): Effect.Effect<Marks, never, Scope.Scope> =>
  Effect.gen(function*() {
    const q = Pg.escapeIdentifier(schema)
    const startStatement = `
      INSERT INTO ${q}.consumer AS c (id, channels, done, running_host, running_pid, running_since)
      SELECT v.id, v.channels,
             CASE WHEN v.now THEN pg_catalog.pg_current_snapshot() ELSE '${Snapshot.beginning}'::pg_snapshot END,
             $2, $3, pg_catalog.clock_timestamp()
        FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS v(id text, channels text[], now boolean)
      ON CONFLICT (id) DO UPDATE
         SET channels = excluded.channels, running_host = excluded.running_host, running_pid = excluded.running_pid,
             running_since = excluded.running_since, running_backend_pid = NULL,
             current_error = NULL, current_attempt = NULL, current_log_id = NULL, error_since = NULL
      RETURNING c.id, c.running_since::text AS since`

    const start = yield* Batcher.make((batch: ReadonlyArray<Parameters<Marks["start"]>[0]>) =>
      Effect.map(
        Effect.forEach(rounds(batch), (round) =>
          Effect.map(
            sql.unsafe<{ id: string; since: string }>(startStatement, [
              JSON.stringify(round.map(([, c]) => ({ id: c.id, channels: c.channels, now: c.startFrom === "now" }))),
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

    const listening = yield* Batcher.make((batch: ReadonlyArray<{ id: string; since: string; pid: number }>) =>
      Effect.as(
        sql.unsafe(
          `UPDATE ${q}.consumer AS c SET running_backend_pid = v.pid
             FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS v(id text, since timestamptz, pid integer)
            WHERE c.id = v.id AND c.running_since = v.since`,
          [JSON.stringify(batch)]
        ),
        batch.map(() => undefined)
      ), MAX_BATCH)

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
      start,
      listening: (id, since, pid) => listening({ id, since, pid }),
      stop: (id, since) => stop({ id, since })
    } satisfies Marks
  })
