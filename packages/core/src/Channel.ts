/**
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { PgWatchError } from "./PgWatchError.js"

const VALID = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/

/**
 * A channel name: an SQL identifier PostgreSQL accepts unquoted-style (a letter or `_`, then
 * letters, digits, `_` or `$`), at most 63 bytes. The log table checks the same rule.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChannelName = Schema.String.pipe(
  Schema.pattern(VALID, {
    message: (issue) =>
      `invalid channel name ${JSON.stringify(issue.actual)}: start with a letter or _, then letters, digits, _ or $ (at most 63)`
  }),
  Schema.brand("@pgwatch/ChannelName")
)

/**
 * @since 0.1.0
 * @category models
 */
export type ChannelName = typeof ChannelName.Type

/**
 * Checks a channel name, failing with a `PgWatchError` that says what is wrong. An `Either` is
 * also an `Effect`, so this serves plain code and effects alike.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate = (name: string): Either.Either<ChannelName, PgWatchError> =>
  // The plain test first (the same pattern as the schema's): producers call this on every send.
  VALID.test(name) ? Either.right(name as ChannelName) : Either.mapLeft(
    Schema.decodeUnknownEither(ChannelName)(name),
    (error) => new PgWatchError({ reason: "InvalidChannel", message: ParseResult.TreeFormatter.formatErrorSync(error) })
  )
