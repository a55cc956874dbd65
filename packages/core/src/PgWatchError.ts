/**
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * Everything pgwatch itself rejects or cannot do, with a reason to branch on and a message a
 * person can act on. Database failures stay `SqlError`s from `@effect/sql`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgWatchError extends Schema.TaggedError<PgWatchError>("@pgwatch/PgWatchError")("PgWatchError", {
  reason: Schema.Literal("Config", "InvalidChannel", "InvalidPayload", "Migration", "NotMigrated", "Listener", "Permission"),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}
