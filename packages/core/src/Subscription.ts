/**
 * The notification stream itself, for building your own processing on it. `Consumer` is built
 * on this module; most apps want that instead.
 *
 * @since 0.1.0
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Channel from "./Channel.js"
import { retryIdempotent } from "./internal/connectionLoss.js"
import * as Cursor from "./internal/cursor.js"
import * as Reader from "./internal/reader.js"
import { isConfidential, PgWatch } from "./PgWatch.js"
import type { PgWatchError } from "./PgWatchError.js"

/**
 * A notification from the stream, carrying the position to commit once it is handled.
 *
 * @since 0.1.0
 * @category models
 */
export type Delivery = Reader.Delivery

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly consumerId: string
  readonly channels: ReadonlyArray<string>
  /** Where a consumer seen for the first time starts. Default `beginning`. */
  readonly startFrom?: Cursor.StartFrom | undefined
  /** Drop the backlog and start from what commits now, even for a known consumer. */
  readonly skipPlayback?: boolean | undefined
  /**
   * Keep payloads out of NOTIFYs (which any role in the database can LISTEN to): live rows
   * come as ids, read from the log. Default: the service's `confidentialChannels`.
   */
  readonly confidential?: boolean | undefined
  /** Rows per query; defaults to the service's `pageSize`. */
  readonly pageSize?: number | undefined
  /** Completed once the stream listens on its channels: what is written after is live. */
  readonly subscribed?: Deferred.Deferred<void> | undefined
}

/**
 * Every notification on the channels that the consumer has not committed, then live ones, each
 * once: playback from the consumer's saved position, then, once caught up, rows straight from
 * their signed NOTIFYs (in commit order), with the log read again as backfill (on the poll
 * interval, after a lost connection, when live rows were missed). A row found only by backfill
 * can come after rows committed later. Redeliveries requested for the consumer come out of band
 * (their `cursor` is none).
 *
 * Nothing is marked done until you `commit`.
 *
 * @since 0.1.0
 * @category streams
 */
export const stream = (options: Options): Stream.Stream<Delivery, SqlError | PgWatchError, PgWatch> =>
  Stream.unwrap(Effect.gen(function*() {
    const watch = yield* PgWatch
    const channels = yield* Effect.forEach(options.channels, Channel.validate)
    const schema = watch.settings.schema
    // An upsert: safe to repeat on a pooled connection lost under it.
    const registered = yield* retryIdempotent(
      Cursor.register(schema, options.consumerId, channels, options.startFrom ?? "beginning")
    )
    const start = options.skipPlayback === true ? yield* Cursor.skipToNow(schema, options.consumerId) : registered
    return Reader.stream({
      schema,
      consumerId: options.consumerId,
      channels,
      confidential: channels.filter((channel) => isConfidential(watch.settings, channel, options.confidential)),
      start,
      pageSize: options.pageSize ?? watch.settings.pageSize,
      pageBytes: watch.settings.pageBytes,
      pollInterval: watch.settings.pollInterval,
      fallbackPollInterval: watch.settings.fallbackPollInterval,
      busyReadInterval: watch.settings.busyReadInterval,
      listener: watch.listener,
      pages: watch.pages,
      poller: watch.poller,
      subscribed: options.subscribed
    })
  }).pipe(Effect.provideServiceEffect(SqlClient.SqlClient, Effect.map(PgWatch, (watch) => watch.sql)))).pipe(
    Stream.provideServiceEffect(SqlClient.SqlClient, Effect.map(PgWatch, (watch) => watch.sql))
  )

/**
 * Records that these deliveries (in stream order) are handled: the consumer's position moves
 * to the last of them, and their redelivery requests are cleared. One write however many.
 *
 * @since 0.1.0
 * @category streams
 */
export const commit = (consumerId: string, deliveries: Iterable<Delivery>): Effect.Effect<void, SqlError, PgWatch> =>
  Effect.flatMap(PgWatch, (watch) =>
    Cursor.save(watch.settings.schema, consumerId, Cursor.advance(Cursor.noProgress, deliveries)).pipe(
      Effect.provideService(SqlClient.SqlClient, watch.sql)
    ))
