/**
 * Unit-test a consumer's handler without a database: feed it notifications and see what
 * became of each (handled, or dead-lettered and why, after how many attempts). Retry delays
 * run on `Clock`, so a test forks `run` and moves time with `TestClock.adjust`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { type Consumer, defaultRetry } from "./Consumer.js"
import * as Handling from "./internal/handling.js"
import type { Notification } from "./Notification.js"

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
 * Runs the consumer's handler over the inputs exactly as the runtime would (schema decoding,
 * retries on its schedule, or the default one, dead-letter decisions, its concurrency), in
 * order.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <R>(consumer: Consumer<R>, inputs: Iterable<Input>): Effect.Effect<ReadonlyArray<Result>, never, R> =>
  Effect.gen(function*() {
    const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const notifications = Array.from(inputs, (input, i): Notification<unknown> => ({
      id: input.id ?? BigInt(i + 1),
      channel: input.channel ?? consumer.channels[0] ?? "test",
      payload: input.payload,
      createdAt: input.createdAt ?? new Date(now),
      isReplay: input.isReplay ?? false
    }))
    const handle = Handling.processor(consumer, defaultRetry)
    return yield* Effect.forEach(
      notifications,
      (notification) => Effect.map(handle(notification), (outcome) => ({ notification, outcome })),
      { concurrency: consumer.concurrency }
    )
  })
