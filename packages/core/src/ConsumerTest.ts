/**
 * Unit-test a consumer's handler without a database: feed it notifications and see what
 * became of each (handled, or dead-lettered and why, after how many attempts). Retry delays
 * run on `Clock`, so a test forks `run` and moves time with `TestClock.adjust`.
 *
 * @since 0.1.0
 */
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type Consumer, retrySchedule } from "./Consumer.js"
import * as Handling from "./internal/handling.js"
import type { Notification } from "./Notification.js"
import * as PgWatch from "./PgWatch.js"
import type { PgWatchError } from "./PgWatchError.js"

/**
 * What handling one notification came to.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = Handling.Outcome

/**
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly notification: Notification<unknown>
  readonly outcome: Outcome
}

/**
 * A notification as the consumer would receive it; unset fields get test defaults (the
 * consumer's first channel, ids counting from 1, the clock's time, live).
 *
 * @since 0.1.0
 * @category models
 */
export interface Input {
  readonly payload: unknown
  readonly channel?: string | undefined
  readonly id?: bigint | undefined
  readonly createdAt?: Date | undefined
  readonly isReplay?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /**
   * The service's retry policy, for a consumer without its own schedule: pass the one
   * production uses (`PgWatch.Options["retry"]`). Without it, the `PgWatch` service's in
   * context if there is one, else the one `PgWatch.config` reads (`PGWATCH_RETRY_*`,
   * `PGWATCH_MAX_RETRIES`, defaulting like the service).
   */
  readonly retry?: PgWatch.Options["retry"]
}

/**
 * The retry policy the runtime would use for consumers without their own schedule. A bad
 * policy or setting fails, as it would fail the service's layer.
 */
const servicePolicy = (
  options: RunOptions
): Effect.Effect<PgWatch.RetryPolicy, PgWatchError | ConfigError.ConfigError> =>
  Effect.gen(function*() {
    if (options.retry !== undefined) return yield* resolveRetry(options.retry)
    const service = yield* Effect.serviceOption(PgWatch.PgWatch)
    if (Option.isSome(service)) return service.value.settings.retry
    const fromConfig = yield* PgWatch.config
    return yield* resolveRetry(fromConfig.retry)
  })

const resolveRetry = (retry: PgWatch.Options["retry"]) =>
  Effect.map(PgWatch.resolve({ retry }), (settings) => settings.retry)

/**
 * Runs the consumer's handler over the inputs exactly as the runtime would (schema decoding,
 * dead-letter decisions, its concurrency), in order, with the runtime's retries: the
 * consumer's own schedule, else the service's policy (see `RunOptions.retry`). Fails only
 * when that policy is invalid (a `PgWatchError`) or its settings cannot be read (a
 * `ConfigError`, e.g. `PGWATCH_MAX_RETRIES=many`).
 *
 * @since 0.1.0
 * @category running
 */
export const run = <R>(
  consumer: Consumer<R>,
  inputs: Iterable<Input>,
  options: RunOptions = {}
): Effect.Effect<ReadonlyArray<Result>, PgWatchError | ConfigError.ConfigError, R> =>
  Effect.gen(function*() {
    const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const notifications = Array.from(inputs, (input, i): Notification<unknown> => ({
      id: input.id ?? BigInt(i + 1),
      channel: input.channel ?? consumer.channels[0] ?? "test",
      payload: input.payload,
      createdAt: input.createdAt ?? new Date(now),
      isReplay: input.isReplay ?? false
    }))
    const policy = yield* servicePolicy(options)
    const handle = Handling.processor(consumer, retrySchedule(policy))
    return yield* Effect.forEach(
      notifications,
      (notification) => Effect.map(handle(notification), (outcome) => ({ notification, outcome })),
      { concurrency: consumer.concurrency }
    )
  })
