import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { retryIdempotent } from "./connectionLoss.js"
import * as Cursor from "./cursor.js"
import type { Delivery } from "./reader.js"

/**
 * Writes a consumer's progress behind its handlers: each handled delivery is recorded in
 * memory and a background fiber saves the newest position, at most one write per `interval`,
 * coalescing whatever was handled meanwhile. Handling never waits for a write.
 */
export interface Committer {
  /**
   * Records a delivery handled; called in stream order, once per notification, so it is a
   * plain call rather than an effect.
   */
  readonly record: (delivery: Delivery) => void
  /** Writes whatever is recorded and not yet saved. */
  readonly flush: Effect.Effect<void, SqlError>
  /** Fails if a background write failed, for the consumer to restart on. */
  readonly failure: Effect.Effect<never, SqlError>
}

const gathering = (): Cursor.Gathering => ({ cursor: Option.none(), handled: 0, lastLogId: Option.none(), redelivered: [] })

export const make = (
  schema: string,
  consumerId: string,
  interval: Duration.Duration
): Effect.Effect<Committer, never, Scope.Scope | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Handled and not yet being written.
    let pending = gathering()
    const wanted = yield* Queue.sliding<void>(1)
    // Whether a write is already asked for: recording then costs no queue operation.
    let asked = false
    const writing = yield* Effect.makeSemaphore(1)

    const take = (): Cursor.Progress => {
      const progress = pending
      pending = gathering()
      return progress
    }

    // A failed write puts its progress back in front of anything recorded since.
    const putBack = (progress: Cursor.Progress) => {
      const later = pending
      pending = {
        cursor: Option.orElse(later.cursor, () => progress.cursor),
        handled: progress.handled + later.handled,
        lastLogId: Option.orElse(later.lastLogId, () => progress.lastLogId),
        redelivered: [...progress.redelivered, ...later.redelivered]
      }
    }

    const flush = writing.withPermits(1)(
      Effect.suspend(() => {
        const progress = take()
        // A pooled connection lost under the write (an idle time-out) is tried again at once
        // rather than restarting the consumer. Repeating it can only over-count `handled`: the
        // position it writes is absolute, which is also why a failed write may be put back.
        return retryIdempotent(Cursor.save(schema, consumerId, progress)).pipe(
          Effect.tapError(() => Effect.sync(() => putBack(progress)))
        )
      })
    ).pipe(Effect.provideService(SqlClient.SqlClient, sql))

    const background = yield* Effect.forkScoped(
      Effect.forever(Queue.take(wanted).pipe(
        Effect.zipRight(Effect.sync(() => {
          asked = false
        })),
        Effect.zipRight(flush),
        Effect.zipRight(Effect.sleep(interval))
      ))
    )

    return {
      record: (delivery) => {
        Cursor.gather(pending, delivery)
        if (!asked) {
          asked = true
          wanted.unsafeOffer(undefined)
        }
      },
      flush,
      failure: Effect.flatMap(background.await, (exit) =>
        exit._tag === "Failure" ? Effect.failCause(exit.cause) : Effect.never)
    } satisfies Committer
  })
