import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Cursor from "./cursor.js"
import type { Delivery } from "./reader.js"

/**
 * Writes a consumer's progress behind its handlers: handled deliveries are recorded in memory
 * and a background fiber saves the newest position, at most one write per `interval`,
 * coalescing whatever was handled meanwhile. Handling never waits for a write.
 */
export interface Committer {
  /** Records deliveries handled, in stream order, and asks for a write. */
  readonly record: (deliveries: Iterable<Delivery>) => Effect.Effect<void>
  /** Writes whatever is recorded and not yet saved. */
  readonly flush: Effect.Effect<void, SqlError>
  /** Fails if a background write failed, for the consumer to restart on. */
  readonly failure: Effect.Effect<never, SqlError>
}

export const make = (
  schema: string,
  consumerId: string,
  interval: Duration.Duration
): Effect.Effect<Committer, never, Scope.Scope | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pending = yield* Ref.make(Cursor.noProgress)
    const wanted = yield* Queue.sliding<void>(1)
    const writing = yield* Effect.makeSemaphore(1)

    const flush = writing.withPermits(1)(
      Effect.flatMap(Ref.getAndSet(pending, Cursor.noProgress), (progress) =>
        Cursor.save(schema, consumerId, progress).pipe(
          // A failed write puts its progress back in front of anything recorded since.
          Effect.tapError(() => Ref.update(pending, (later) => ({
            ...progress,
            ...later,
            cursor: later.cursor._tag === "Some" ? later.cursor : progress.cursor,
            lastLogId: later.lastLogId._tag === "Some" ? later.lastLogId : progress.lastLogId,
            handled: progress.handled + later.handled,
            redelivered: [...progress.redelivered, ...later.redelivered]
          })))
        ))
    ).pipe(Effect.provideService(SqlClient.SqlClient, sql))

    const background = yield* Effect.forkScoped(
      Effect.forever(Queue.take(wanted).pipe(Effect.zipRight(flush), Effect.zipRight(Effect.sleep(interval))))
    )

    return {
      record: (deliveries) =>
        Effect.zipRight(Ref.update(pending, (progress) => Cursor.advance(progress, deliveries)), Queue.offer(wanted, undefined)),
      flush,
      failure: Effect.flatMap(background.await, (exit) =>
        exit._tag === "Failure" ? Effect.failCause(exit.cause) : Effect.never)
    } satisfies Committer
  })
