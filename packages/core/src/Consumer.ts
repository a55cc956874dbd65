/**
 * @since 0.1.0
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
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
import type { StartFrom } from "./internal/cursor.js"
import { describeError } from "./internal/logText.js"
import * as Running from "./internal/running.js"
import type { Notification } from "./Notification.js"
import { defaults, PgWatch } from "./PgWatch.js"
import type { RetryPolicy } from "./PgWatch.js"
import type { PgWatchError } from "./PgWatchError.js"

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
 * Declares a consumer.
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
  return {
    [TypeId]: TypeId,
    id: options.id,
    channels: options.channels,
    concurrency: options.concurrency ?? 1,
    retry: options.retry,
    startFrom: options.startFrom ?? "beginning",
    decode,
    handle: options.handle as Consumer<R>["handle"]
  }
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
 * Runs a consumer as a supervised fiber in the layer's scope: when its database work fails it
 * restarts from its saved position after a backoff, without touching other consumers. The
 * layer is built once the consumer listens on its channels. Closing the scope stops it
 * gracefully (bounded by the service's `shutdownTimeout`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R>(consumer: Consumer<R>, options: RunOptions = {}): Layer.Layer<never, never, PgWatch | R> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const { settings } = yield* PgWatch
    const stop = yield* Deferred.make<void>()
    const subscribed = yield* Deferred.make<void>()
    const supervised = runUntil(consumer, stop, { ...options, subscribed }).pipe(
      Effect.tapErrorCause((cause) =>
        Effect.logError(`pgwatch: consumer ${consumer.id} stopped on an error; restarting: ${describeError(Cause.squash(cause))}`)
      ),
      Effect.retry(Schedule.exponential("500 millis").pipe(Schedule.union(Schedule.spaced("30 seconds")))),
      Effect.annotateLogs("consumer", consumer.id)
    )
    const fiber = yield* Effect.forkScoped(supervised)
    // The layer is ready once the consumer listens: anything written after that is live.
    yield* Deferred.await(subscribed).pipe(Effect.timeout(settings.shutdownTimeout), Effect.ignore)
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
