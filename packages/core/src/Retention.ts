/**
 * @since 0.1.0
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { PgWatch } from "./PgWatch.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface CleanupOptions {
  /** Delete notifications created longer ago than this. */
  readonly olderThan: Duration.DurationInput
  /** Count only; delete nothing. */
  readonly dryRun?: boolean | undefined
  /** Also delete what a registered consumer has not processed, and their dead letters. */
  readonly force?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CleanupResult {
  /** Rows deleted, or that would be with `dryRun`. */
  readonly deleted: number
  /** Old rows kept because a consumer still needs them (unprocessed, dead-lettered or queued for redelivery). */
  readonly kept: number
}

/**
 * Deletes old notifications. Unless forced it keeps every row that some registered consumer
 * of its channel has not passed yet, or holds as a dead letter or redelivery.
 *
 * @since 0.1.0
 * @category retention
 */
export const cleanup = (options: CleanupOptions): Effect.Effect<CleanupResult, SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    const seconds = Duration.toSeconds(Duration.decode(options.olderThan))
    const force = options.force === true
    const [counts] = yield* sql<{ deleted: string; kept: string }>`
      WITH old AS (
        SELECT l.id, (
          EXISTS (SELECT 1 FROM ${schema}.consumer c
                   WHERE l.channel = ANY (c.channels) AND NOT pg_visible_in_snapshot(l.xid, c.done))
          OR EXISTS (SELECT 1 FROM ${schema}.dead_letter d WHERE d.log_id = l.id)
          OR EXISTS (SELECT 1 FROM ${schema}.redelivery r WHERE r.log_id = l.id)
        ) AS needed
        FROM ${schema}.notification_log l
        WHERE l.created_at < now() - make_interval(secs => ${seconds})
      ),
      doomed AS (SELECT id FROM old WHERE ${force} OR NOT needed),
      deleted AS (
        DELETE FROM ${schema}.notification_log l USING doomed
         WHERE l.id = doomed.id AND NOT ${options.dryRun === true}
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM doomed)::text AS deleted,
             (SELECT count(*) FROM old WHERE needed AND NOT ${force})::text AS kept,
             (SELECT count(*) FROM deleted) AS _`
    return { deleted: Number(counts!.deleted), kept: Number(counts!.kept) }
  }).pipe(Effect.withSpan("Retention.cleanup"))
