/**
 * @since 0.1.0
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Channel from "./Channel.js"
import type { StartFrom } from "./internal/cursor.js"
import { describe } from "./internal/describe.js"
import * as Running from "./internal/running.js"
import * as Supervisor from "./internal/supervisor.js"
import type { Notification } from "./Notification.js"
import { defaults, PgWatch } from "./PgWatch.js"
import type { RetryPolicy } from "./PgWatch.js"
import { PgWatchError } from "./PgWatchError.js"

/**
 * A failure worth another try: retried on the consumer's schedule, then dead-lettered.
 * Defects thrown by a handler are treated the same way.
 *
 * @since 0.1.0
 * @category errors
 */
export class Retryable extends Data.TaggedError("Retryable")<{ readonly message: string; readonly cause?: unknown }> {}

/**
 * A failure no retry will fix: the notification is dead-lettered at once and the consumer
 * moves on.
 *
 * @since 0.1.0
 * @category errors
 */
export class Permanent extends Data.TaggedError("Permanent")<{ readonly message: string; readonly cause?: unknown }> {}

/**
 * @since 0.1.0
 * @category models
 */
export type HandlerError = Retryable | Permanent

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@pgwatch/Consumer")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A consumer: an id (its progress is stored under it), channels, and a handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface Consumer<R = never> {
  readonly [TypeId]: TypeId
  readonly id: string
  readonly channels: ReadonlyArray<string>
  /** Handlers running at once; results are committed in log order. Default 1. */
  readonly concurrency: number
  /** Its own retry schedule; without one, the service's `retry` policy applies. */
  readonly retry: Schedule.Schedule<unknown, HandlerError> | undefined
  readonly startFrom: StartFrom
  /** Whether its channels' payloads stay out of NOTIFYs; undefined: the service's `confidentialChannels`. */
  readonly confidential: boolean | undefined
  /** Turns a raw payload into the handler's input, or says why it cannot. */
  readonly decode: (payload: unknown) => Either.Either<unknown, string>
  readonly handle: (notification: Notification<unknown>) => Effect.Effect<void, HandlerError, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<A, I, R> {
  readonly id: string
  readonly channels: ReadonlyArray<string>
  /**
   * Decodes payloads; a payload that fails is dead-lettered with the parse error. Decoding is
   * synchronous: a schema with asynchronous transformations is not supported.
   */
  readonly schema?: Schema.Schema<A, I> | undefined
  readonly handle: (notification: Notification<A>) => Effect.Effect<void, HandlerError, R>
  readonly concurrency?: number | undefined
  readonly retry?: Schedule.Schedule<unknown, HandlerError> | undefined
  readonly startFrom?: StartFrom | undefined
  /**
   * Keep payloads out of NOTIFYs (which any role in the database can LISTEN to): live rows
   * come as ids, read from the log. Default: the service's `confidentialChannels`.
   */
  readonly confidential?: boolean | undefined
}

/**
 * Notifications handled, by consumer (tag `consumer`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const handledTotal = Metric.counter("pgwatch_handled_total", { description: "notifications handled" })

/**
 * Handler attempts that failed and will be retried, by consumer.
 *
 * @since 0.1.0
 * @category metrics
 */
export const retriedTotal = Metric.counter("pgwatch_retried_total", {
  description: "handler attempts that will be retried"
})

/**
 * Notifications given up on (dead-lettered), by consumer.
 *
 * @since 0.1.0
 * @category metrics
 */
export const deadLetteredTotal = Metric.counter("pgwatch_dead_lettered_total", {
  description: "notifications given up on"
})

/**
 * Age of the last notification when its handler started, in seconds, by consumer.
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagSeconds = Metric.gauge("pgwatch_lag_seconds", {
  description: "age of the last handled notification when its handler started"
})

/**
 * The retry schedule for a policy: exponential from `baseDelay`, jittered, each delay capped at
 * `maxDelay`, at most `maxRetries` retries; then the notification is dead-lettered.
 *
 * @since 0.1.0
 * @category retries
 */
export const retrySchedule = (policy: RetryPolicy): Schedule.Schedule<unknown, HandlerError> =>
  Schedule.exponential(policy.baseDelay).pipe(
    Schedule.jittered,
    Schedule.union(Schedule.spaced(policy.maxDelay)),
    Schedule.intersect(Schedule.recurs(policy.maxRetries)),
    Schedule.asVoid
  )

/**
 * The default retry schedule: from 200 ms, capped at 30 s, 8 retries (about a minute).
 *
 * @since 0.1.0
 * @category retries
 */
export const defaultRetry: Schedule.Schedule<unknown, HandlerError> = retrySchedule(defaults.retry)

/**
 * Checks a consumer's declaration: a non-empty id without control characters or surrounding
 * spaces; at least one channel, each a valid name and none twice; a positive whole
 * concurrency. The error names the consumer and the fix.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (consumer: Pick<Consumer<unknown>, "id" | "channels" | "concurrency">): Either.Either<void, PgWatchError> => {
  const id: unknown = consumer.id
  const fail = (problem: string) =>
    Either.left(
      new PgWatchError({
        reason: "Config",
        message: `consumer ${typeof id === "string" ? JSON.stringify(id) : describe(id)}: ${problem}`
      })
    )
  if (typeof id !== "string" || id === "" || id.length > 200 || id.trim() !== id || /\p{Cc}/u.test(id)) {
    return fail("its id must be 1 to 200 printable characters without surrounding spaces")
  }
  const channels: unknown = consumer.channels
  if (!Array.isArray(channels) || channels.length === 0) {
    return fail("give it at least one channel, e.g. `channels: [\"orders\"]`")
  }
  for (const channel of channels) {
    if (typeof channel !== "string") return fail(`a channel name is a string, got ${describe(channel)}`)
    const checked = Channel.validate(channel)
    if (Either.isLeft(checked)) return fail(checked.left.message)
  }
  const twice = channels.find((channel, i) => channels.indexOf(channel) !== i)
  if (twice !== undefined) return fail(`channel "${twice}" is listed twice; list each channel once`)
  const concurrency: unknown = consumer.concurrency
  if (typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1) {
    return fail(`concurrency must be a positive whole number, got ${String(concurrency)}`)
  }
  return Either.void
}

/**
 * Declares a consumer. An invalid declaration (see `validate`) is a programming error: it
 * throws a `PgWatchError` with reason `Config` at once, when the module declaring it loads.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A = unknown, I = A, R = never>(options: Options<A, I, R>): Consumer<R> => {
  const decodeEither = options.schema === undefined ? undefined : Schema.decodeUnknownEither(options.schema)
  const decode = (payload: unknown): Either.Either<unknown, string> =>
    decodeEither === undefined
      ? Either.right(payload)
      : Either.mapLeft(decodeEither(payload), (error) => ParseResult.TreeFormatter.formatErrorSync(error))
  const consumer: Consumer<R> = {
    [TypeId]: TypeId,
    id: options.id,
    channels: options.channels,
    concurrency: options.concurrency ?? 1,
    retry: options.retry,
    startFrom: options.startFrom ?? "beginning",
    confidential: options.confidential,
    decode,
    handle: options.handle as Consumer<R>["handle"]
  }
  const valid = validate(consumer)
  if (Either.isLeft(valid)) throw valid.left
  return consumer
}

/**
 * Whether a value is a consumer made by `make` (for example one exported by an app module).
 *
 * @since 0.1.0
 * @category guards
 */
export const isConsumer = (u: unknown): u is Consumer<unknown> =>
  typeof u === "object" && u !== null && (u as { readonly [TypeId]?: unknown })[TypeId] === TypeId

/**
 * Options for running a consumer.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Skip the backlog: start from what commits now. */
  readonly skipPlayback?: boolean | undefined
  readonly pageSize?: number | undefined
}

/**
 * Runs a consumer until `stop` completes: plays back, follows live, handles each page (up to
 * `concurrency` handlers at once, with retries and dead letters) and saves progress behind
 * the handlers. On `stop` it takes no new work, lets in-flight handlers finish, saves, and
 * returns.
 *
 * @since 0.1.0
 * @category running
 */
export const runUntil: <R>(
  consumer: Consumer<R>,
  stop: Deferred.Deferred<void>,
  options?: RunOptions & { readonly subscribed?: Deferred.Deferred<void> | undefined }
) => Effect.Effect<void, SqlError | PgWatchError, PgWatch | R> = Running.runUntil

/**
 * Options for `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends RunOptions {
  /**
   * Failed with the error if the consumer stops for good: a configuration error no restart
   * can fix (a service its handler needs is not provided). Without it, that error is logged;
   * with it, reporting it is the caller's (`pgwatch listen` exits with it).
   */
  readonly fatal?: Deferred.Deferred<void, PgWatchError> | undefined
}

/**
 * Runs a consumer as a supervised fiber in the layer's scope. Whatever ends a run (a database
 * error, a defect) restarts it from its saved position, without touching other consumers,
 * after a backoff: doubling from the service's `reconnectDelay` up to `maxReconnectDelay`,
 * reset once a run lasted that long; each restart is one log line. An error no restart fixes
 * (a missing grant, an unmigrated schema) is logged once with its fix and retried quietly at
 * the longest delay; a missing service stops the consumer (see `LayerOptions.fatal`). An
 * invalid consumer fails the layer's build.
 *
 * The layer is built once the consumer listens on its channels. Closing the scope stops it
 * gracefully (bounded by the service's `shutdownTimeout`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R>(consumer: Consumer<R>, options: LayerOptions = {}): Layer.Layer<never, PgWatchError, PgWatch | R> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    yield* validate(consumer)
    const { settings, sql } = yield* PgWatch
    const stop = yield* Deferred.make<void>()
    const subscribed = yield* Deferred.make<void>()
    const { fatal, ...runOptions } = options
    const supervised = Supervisor.supervise(runUntil(consumer, stop, { ...runOptions, subscribed }), {
      consumerId: consumer.id,
      schema: settings.schema,
      baseDelay: settings.reconnectDelay,
      maxDelay: settings.maxReconnectDelay,
      stop,
      fatal,
      role: Effect.map(sql<{ readonly role: string }>`SELECT current_user AS role`, ([row]) => row!.role)
    }).pipe(Effect.annotateLogs("consumer", consumer.id))
    const fiber = yield* Effect.forkScoped(supervised)
    // The layer is ready once the consumer listens (anything written after that is live), or
    // has stopped for good.
    yield* Effect.raceFirst(Deferred.await(subscribed), Fiber.await(fiber)).pipe(
      Effect.timeout(settings.shutdownTimeout),
      Effect.ignore
    )
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Deferred.succeed(stop, undefined)
        // Finalizers are uninterruptible: only an interruptible wait can be cut short.
        const finished = yield* Fiber.await(fiber).pipe(
          Effect.interruptible,
          Effect.timeout(settings.shutdownTimeout),
          Effect.option
        )
        if (finished._tag === "None") {
          yield* Effect.logWarning(`pgwatch: consumer ${consumer.id} did not finish in time; abandoning in-flight work`)
          yield* Fiber.interrupt(fiber)
        }
      })
    )
  }))
