import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type { Consumer, HandlerError } from "../Consumer.js"
import { deadLetteredTotal, handledTotal, lagSeconds, Retryable, retriedTotal } from "../Consumer.js"
import type { Notification } from "../Notification.js"
import * as ConsumerState from "./consumerState.js"
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

const describe = (error: HandlerError): string => {
  const cause = error.cause
  if (cause === undefined) return error.message
  const detail = cause instanceof Error ? cause.message : typeof cause === "string" ? cause : JSON.stringify(cause)
  return `${error.message}: ${detail}`
}

/** A handler that threw or died: retried like a retryable error. */
const died = (defect: unknown) =>
  new Retryable({ message: `handler died: ${Cause.pretty(Cause.die(defect))}`, cause: defect })

/**
 * The handling of one notification for a consumer: a retryable error (or a defect) is retried
 * on the consumer's schedule; a permanent error, a payload that fails the schema, or retries
 * running out end as a dead letter. Never fails: the outcome says what happened. Runs under
 * `Clock`, so `TestClock` drives the retry delays. Interruption (shutdown) passes through.
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

  /** A first attempt's failure as a handler error (a defect is retryable); none if interrupted. */
  const asHandlerError = (cause: Cause.Cause<HandlerError>): Option.Option<HandlerError> =>
    Option.orElse(Cause.failureOption(cause), () => Option.map(Cause.dieOption(cause), died))

  const warnRetryable = (notification: Notification<unknown>, error: HandlerError) =>
    error._tag === "Retryable"
      ? Effect.zipRight(
        Metric.increment(retried),
        Effect.logWarning(`pgwatch: ${consumer.id} failed on notification ${notification.id}: ${error.message}`)
      )
      : Effect.void

  // After a failed first attempt: retry a retryable error on the schedule, else give up.
  const afterFirstFailure = (notification: Notification<unknown>, first: HandlerError) => {
    let attempts = 1
    const gaveUp = (error: HandlerError) =>
      deadLetter(error._tag === "Permanent" ? "permanent" : "retries-exhausted", describe(error), attempts)
    if (first._tag === "Permanent") return gaveUp(first)
    const attempt = Effect.suspend(() => {
      attempts += 1
      return consumer.handle(notification)
    }).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(died(defect))),
      Effect.tapError((error) => warnRetryable(notification, error)),
      Effect.tapError((error) => state.retrying(notification.id, attempts, describe(error)))
    )
    const outcome = Effect.matchEffect(retryPath(attempt, first), {
      onSuccess: () => Effect.as(Metric.increment(handled), { _tag: "Handled", attempts } as Outcome),
      onFailure: gaveUp
    })
    return state.retrying(notification.id, 1, describe(first)).pipe(
      Effect.zipRight(outcome),
      Effect.zipLeft(state.settled(notification.id))
    )
  }

  // Most notifications succeed at once: that path allocates as little as it can.
  const handledAtOnce = Effect.as(Metric.increment(handled), { _tag: "Handled", attempts: 1 } as Outcome)

  return (notification: Notification<unknown>): Effect.Effect<Outcome, never, R> => {
    const decoded = consumer.decode(notification.payload)
    if (Either.isLeft(decoded)) return deadLetter("invalid-payload", decoded.left, 0)
    const typed: Notification<unknown> = decoded.right === notification.payload
      ? notification
      : { ...notification, payload: decoded.right }
    const handling = Effect.matchCauseEffect(Effect.suspend(() => consumer.handle(typed)), {
      onSuccess: () => handledAtOnce,
      onFailure: (cause) =>
        Option.match(asHandlerError(cause), {
          onNone: () => Effect.failCause(cause as Cause.Cause<never>),
          onSome: (error) => Effect.zipRight(warnRetryable(typed, error), afterFirstFailure(typed, error))
        })
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
 * Records, once per page, how old the newest notification was when handling began.
 */
export const recordLag = (consumerId: string, newest: Notification<unknown>) => {
  const lag = Metric.tagged(lagSeconds, "consumer", consumerId)
  return Effect.flatMap(
    Effect.clockWith((clock) => clock.currentTimeMillis),
    (now) => Metric.set(lag, Math.max(0, now - newest.createdAt.getTime()) / 1000)
  )
}
