import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type { Consumer } from "../Consumer.js"
import { Retryable } from "../Consumer.js"
import type { Notification } from "../Notification.js"

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

const handled = Metric.counter("pgwatch_handled_total", { description: "notifications handled" })
const retried = Metric.counter("pgwatch_retried_total", { description: "handler attempts that will be retried" })
const deadLettered = Metric.counter("pgwatch_dead_lettered_total", { description: "notifications given up on" })
const lag = Metric.gauge("pgwatch_lag_seconds", {
  description: "age of the last handled notification when its handler started"
})

const describe = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error)

/**
 * Runs a consumer's handler on one notification: a retryable error (or a defect) is retried
 * on the consumer's schedule; a permanent error, a payload that fails the schema, or retries
 * running out end as a dead letter. Never fails: the outcome says what happened. Runs under
 * `Clock`, so `TestClock` drives the retry delays. Interruption (shutdown) passes through.
 */
export const process = <R>(consumer: Consumer<R>, notification: Notification<unknown>): Effect.Effect<Outcome, never, R> =>
  Effect.gen(function*() {
    const startedAt = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    yield* Metric.set(Metric.tagged(lag, "consumer", consumer.id), Math.max(0, startedAt - notification.createdAt.getTime()) / 1000)

    const decoded = yield* Effect.either(consumer.decode(notification.payload))
    if (Either.isLeft(decoded)) {
      yield* Metric.increment(Metric.tagged(deadLettered, "consumer", consumer.id))
      return { _tag: "DeadLettered", reason: "invalid-payload", error: decoded.left, attempts: 0 } as const
    }
    const typed: Notification<unknown> = { ...notification, payload: decoded.right }

    let attempts = 0
    const attempt = Effect.suspend(() => {
      attempts += 1
      return consumer.handle(typed)
    }).pipe(
      Effect.catchAllDefect((defect) =>
        Effect.fail(new Retryable({ message: `handler died: ${Cause.pretty(Cause.die(defect))}`, cause: defect }))
      ),
      Effect.tapError((error) =>
        error._tag === "Retryable"
          ? Effect.zipRight(
            Metric.increment(Metric.tagged(retried, "consumer", consumer.id)),
            Effect.logWarning(`pgwatch: ${consumer.id} failed on notification ${notification.id}: ${error.message}`)
          )
          : Effect.void
      )
    )
    const result = yield* attempt.pipe(
      Effect.retry({ schedule: consumer.retry, while: (error) => error._tag === "Retryable" }),
      Effect.either
    )
    if (Either.isRight(result)) {
      yield* Metric.increment(Metric.tagged(handled, "consumer", consumer.id))
      return { _tag: "Handled", attempts } as const
    }
    yield* Metric.increment(Metric.tagged(deadLettered, "consumer", consumer.id))
    const error = result.left
    return {
      _tag: "DeadLettered",
      reason: error._tag === "Permanent" ? "permanent" : "retries-exhausted",
      error: Option.match(Option.fromNullable(error.cause), {
        onNone: () => error.message,
        onSome: (cause) => `${error.message}: ${describe(cause)}`
      }),
      attempts
    } as const
  }).pipe(
    Effect.withSpan(`pgwatch.consume ${consumer.id}`, {
      attributes: {
        "pgwatch.consumer": consumer.id,
        "pgwatch.channel": notification.channel,
        "pgwatch.log_id": String(notification.id),
        "pgwatch.replay": notification.isReplay
      }
    })
  )
