import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { StartFrom } from "./cursor.js"
import { PgWatch } from "../PgWatch.js"

/**
 * What a running consumer tells operators (`Admin.status`) about itself, in the `running_*` and
 * `current_*` columns of its row (sql/0007_consumer_state.sql). Writes are few: one when it
 * starts, one per (re)connection of the listen connection, one per failed handler attempt, one
 * when a retried notification is settled, one when it stops; never one per handled notification.
 * A failed write is logged and otherwise ignored: reporting never stops a consumer.
 */
export interface ConsumerState {
  /** Attempt `attempt` of notification `logId` failed with `error`; it will be retried. */
  readonly retrying: (logId: bigint, attempt: number, error: string) => Effect.Effect<void>
  /** The retries of notification `logId` are over (it was handled, or dead-lettered). */
  readonly settled: (logId: bigint) => Effect.Effect<void>
}

/** Reports nothing: for running a handler outside the service (`ConsumerTest`). */
export const silent: ConsumerState = { retrying: () => Effect.void, settled: () => Effect.void }

const quietly = (what: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.asVoid,
    Effect.catchAllCause((cause) => Effect.logDebug(`pgwatch: could not record ${what}`, cause))
  )

/**
 * Marks the consumer as running in this process for the scope's lifetime: registers it (if
 * new), records host, pid and start time, follows its listen connection's server pid (so that
 * status can tell a process that died without cleaning up), and clears it all on close. Returns
 * the hooks the handler runtime reports retries through.
 */
export const running = (
  consumer: { readonly id: string; readonly channels: ReadonlyArray<string>; readonly startFrom: StartFrom }
): Effect.Effect<ConsumerState, never, PgWatch | Scope.Scope> =>
  Effect.gen(function*() {
    const { marks, settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    const id = consumer.id

    // The time the mark was made identifies this run: a later run of the same consumer (in this
    // or another process) owns the row from then on, and this one's writes stop touching it.
    // Marks are batched for the process (internal/marks.ts): consumers start and stop together.
    // The marks also follow the listen connection's server pid.
    const since = yield* marks.start(consumer).pipe(
      Effect.catchAllCause((cause) => Effect.as(Effect.logDebug("pgwatch: could not record a start", cause), null))
    )
    const ours = sql`id = ${id} AND running_since = ${since}::timestamptz`

    if (since !== null) {
      yield* Effect.addFinalizer(() =>
        marks.stop(id, since).pipe(Effect.interruptible, Effect.timeout("2 seconds"), quietly("a stop"))
      )
    }

    return {
      retrying: (logId, attempt, error) =>
        sql`UPDATE ${schema}.consumer
               SET current_error = ${error}, current_attempt = ${attempt},
                   error_since = CASE WHEN current_log_id = ${String(logId)}::bigint THEN error_since ELSE now() END,
                   current_log_id = ${String(logId)}::bigint
             WHERE ${ours}`.pipe(quietly("a failed attempt")),
      settled: (logId) =>
        sql`UPDATE ${schema}.consumer
               SET current_error = NULL, current_attempt = NULL, current_log_id = NULL, error_since = NULL
             WHERE ${ours} AND current_log_id = ${String(logId)}::bigint`.pipe(quietly("a settled retry"))
    } satisfies ConsumerState
  })
