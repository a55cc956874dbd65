import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type { Consumer, HandlerError } from "../Consumer.js"
import { deadLetteredTotal, handledTotal, lagSeconds, Permanent, Retryable, retriedTotal } from "../Consumer.js"
import type { Notification } from "../Notification.js"
import { PgWatchError } from "../PgWatchError.js"
import * as ConsumerState from "./consumerState.js"
import { describe, truncate } from "./describe.js"
import { missingServiceError, serviceNotFound } from "./supervisor.js"
import { withSpanIfTraced } from "./tracing.js"

/** Why a notification was given up on. */
export type DeadLetterReason = "permanent" | "invalid-payload" | "retries-exhausted"

/** What handling one notification came to, after retries. */
export type Outcome =
  | { readonly _tag: "Handled"; readonly attempts: number }
  | {
    readonly _tag: "DeadLettered"
    readonly reason: DeadLetterReason
    readonly error: string
    readonly attempts: number
  }

/** A handler error as one line; never throws, whatever its message and cause hold. */
export const describeHandlerError = (error: HandlerError): string => {
  const message = describe(error.message)
  return error.cause === undefined ? message : `${message}: ${describe(error.cause)}`
}

/** Payloads the consumer's schema refused (permanent errors, dead-lettered as invalid payloads). */
const invalidPayloads = new WeakSet<HandlerError>()

const invalidPayload = (message: string) => {
  const error = new Permanent({ message })
  invalidPayloads.add(error)
  return error
}

/** Handling that threw (in the handler or in decoding): retried like a retryable error. */
const died = (defect: unknown) => new Retryable({ message: `handling threw: ${describe(defect)}` })

/** A notification as handlers expect it: `createdAt` a `Date` even if the driver gave a number (`infinity`). */
const normalized = (notification: Notification<unknown>): Notification<unknown> =>
  notification.createdAt instanceof Date
    ? notification
    : { ...notification, createdAt: new Date(Number(notification.createdAt)) }

/**
 * The handling of one notification for a consumer: a retryable error, or anything thrown while
 * decoding or handling it, is retried on the consumer's schedule; a permanent error, a payload
 * that fails the schema, or retries running out end as a dead letter. Never fails: the outcome
 * says what happened. Runs under `Clock`, so `TestClock` drives the retry delays.
 * Interruption (shutdown) passes through, and so does a missing service (as a `Config`
 * defect): the notification is not at fault, so it is neither retried nor dead-lettered.
 *
 * Playback calls this once per row, so the common case is kept short: a synchronous decode,
 * one attempt, and the retry machinery only when that attempt fails.
 */
export const processor = <R>(
  consumer: Consumer<R>,
  fallbackRetry: Schedule.Schedule<unknown, HandlerError>,
  state: ConsumerState.ConsumerState = ConsumerState.silent
) => {
  const retry = consumer.retry ?? fallbackRetry
  const handled = Metric.tagged(handledTotal, "consumer", consumer.id)
  const retried = Metric.tagged(retriedTotal, "consumer", consumer.id)
  const deadLettered = Metric.tagged(deadLetteredTotal, "consumer", consumer.id)
  const spanName = `pgwatch.consume ${consumer.id}`

  const deadLetter = (reason: DeadLetterReason, error: string, attempts: number) =>
    Effect.as(Metric.increment(deadLettered), { _tag: "DeadLettered", reason, error, attempts } as Outcome)

  const retryPath = (attempt: Effect.Effect<void, HandlerError, R>, first: HandlerError) => {
    // Hand the schedule the failure already seen, so that its first delay comes before the
    // second attempt.
    let seen = false
    const again = Effect.suspend(() => seen ? attempt : ((seen = true), Effect.fail(first)))
    return Effect.retry(again, { schedule: retry, while: (error) => error._tag === "Retryable" })
  }

  /**
   * An attempt's failure as a handler error (a defect is retryable); none if interrupted. A
   * missing service is the process's configuration, not this notification's fault: it is
   * raised as a `Config` defect for the supervisor.
   */
  const asHandlerError = (cause: Cause.Cause<HandlerError>): Effect.Effect<Option.Option<HandlerError>> =>
    Option.match(Cause.failureOption(cause), {
      onSome: (error) => Effect.succeed(Option.some(error)),
      onNone: () =>
        Option.match(Cause.dieOption(cause), {
          onNone: () => Effect.succeed(Option.none()),
          onSome: (defect) =>
            Option.match(serviceNotFound(defect), {
              onNone: () => Effect.succeed(Option.some(died(defect))),
              onSome: (service) => Effect.die(missingServiceError(consumer.id, service))
            })
        })
    })

  const warnRetryable = (notification: Notification<unknown>, error: HandlerError) =>
    error._tag === "Retryable"
      ? Effect.zipRight(
        Metric.increment(retried),
        Effect.logWarning(`pgwatch: ${consumer.id} failed on notification ${notification.id}: ${describe(error.message)}`)
      )
      : Effect.void

  /** One attempt: decode the payload (a schema refusing it is final), then handle it. */
  const attempt = (notification: Notification<unknown>): Effect.Effect<void, HandlerError, R> =>
    Effect.suspend(() => {
      const decoded = consumer.decode(notification.payload)
      // The parse error quotes the value: a huge payload must not make a huge error text.
      if (Either.isLeft(decoded)) return Effect.fail(invalidPayload(truncate(decoded.left, 2000)))
      return consumer.handle(decoded.right === notification.payload ? notification : { ...notification, payload: decoded.right })
    })

  /** An attempt whose every end, defects included, is an outcome or an error to retry. */
  const settled = (notification: Notification<unknown>, onAttempt: () => void) =>
    Effect.catchAllCause(
      Effect.suspend(() => {
        onAttempt()
        return attempt(notification)
      }),
      (cause) =>
        Effect.flatMap(asHandlerError(cause), Option.match({
          onNone: () => Effect.failCause(cause as Cause.Cause<never>),
          onSome: (error) => Effect.zipRight(warnRetryable(notification, error), Effect.fail(error))
        }))
    )

  // After a failed first attempt: retry a retryable error on the schedule, else give up.
  const afterFirstFailure = (notification: Notification<unknown>, first: HandlerError, attemptsSoFar: number) => {
    let attempts = attemptsSoFar
    const gaveUp = (error: HandlerError) =>
      invalidPayloads.has(error)
        ? deadLetter("invalid-payload", error.message, attempts - 1)
        : deadLetter(error._tag === "Permanent" ? "permanent" : "retries-exhausted", describeHandlerError(error), attempts)
    if (first._tag === "Permanent") return gaveUp(first)
    // Operators see the failure while it is retried (status), not only once it is given up.
    const again = settled(notification, () => attempts += 1).pipe(
      Effect.tapError((error) => state.retrying(notification.id, attempts, describeHandlerError(error)))
    )
    const outcome = Effect.matchEffect(retryPath(again, first), {
      onSuccess: () => Effect.as(Metric.increment(handled), { _tag: "Handled", attempts } as Outcome),
      onFailure: gaveUp
    }).pipe(
      // The retry machinery itself threw (a custom schedule): give up on this notification.
      Effect.catchAllDefect((defect) =>
        defect instanceof PgWatchError
          ? Effect.die(defect)
          : deadLetter("retries-exhausted", `retrying threw: ${describe(defect)}`, attempts)
      )
    )
    return state.retrying(notification.id, attempts, describeHandlerError(first)).pipe(
      Effect.zipRight(outcome),
      Effect.zipLeft(state.settled(notification.id))
    )
  }

  // Most notifications succeed at once: that path allocates as little as it can.
  const handledAtOnce = Effect.as(Metric.increment(handled), { _tag: "Handled", attempts: 1 } as Outcome)

  return (raw: Notification<unknown>): Effect.Effect<Outcome, never, R> => {
    const notification = normalized(raw)
    const handling = Effect.matchCauseEffect(attempt(notification), {
      onSuccess: () => handledAtOnce,
      onFailure: (cause) =>
        Effect.flatMap(asHandlerError(cause), Option.match({
          onNone: () => Effect.failCause(cause as Cause.Cause<never>),
          onSome: (error) => Effect.zipRight(warnRetryable(notification, error), afterFirstFailure(notification, error, 1))
        }))
    })
    return withSpanIfTraced(spanName, () => ({
      captureStackTrace: false,
      attributes: {
        "pgwatch.consumer": consumer.id,
        "pgwatch.channel": notification.channel,
        "pgwatch.log_id": String(notification.id),
        "pgwatch.replay": notification.isReplay
      }
    }))(handling)
  }
}

/**
 * Records, once per page, how old the newest notification was when handling began. A
 * timestamp with no age (`infinity`, in the future, unreadable) counts as 0.
 */
export const recordLag = (consumerId: string, newest: Notification<unknown>) => {
  const lag = Metric.tagged(lagSeconds, "consumer", consumerId)
  return Effect.flatMap(
    Effect.clockWith((clock) => clock.currentTimeMillis),
    (now) => Metric.set(lag, lagOf(now, newest.createdAt))
  )
}

/** Seconds from `createdAt` to `now`; 0 when that is not a finite, positive number. */
export const lagOf = (now: number, createdAt: unknown): number => {
  const time = createdAt instanceof Date ? createdAt.getTime() : Number(createdAt)
  const seconds = (now - time) / 1000
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0
}
