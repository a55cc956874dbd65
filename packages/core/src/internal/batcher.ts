import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

/**
 * Runs calls in batches: calls made while a batch runs go together in the next one. A lone
 * call waits for nothing; hundreds made at once (consumers starting or stopping together) cost
 * a few statements instead of one each. `run` returns one result per input, in order; its
 * failure fails every call of that batch.
 */
export const make = <A, B, E>(
  run: (batch: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<B>, E>,
  maxBatch: number
): Effect.Effect<(input: A) => Effect.Effect<B, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pending = yield* Queue.unbounded<readonly [A, Deferred.Deferred<B, E>]>()
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.takeBetween(pending, 1, maxBatch), (chunk) => {
      const calls = [...chunk]
      return Effect.flatMap(Effect.exit(run(calls.map(([input]) => input))), (exit) =>
        Effect.forEach(calls, ([, done], i) =>
          Deferred.done(done, Exit.map(exit, (results) => results[i]!)), { discard: true }))
    })))
    return (input: A) =>
      Effect.flatMap(Deferred.make<B, E>(), (done) => Effect.zipRight(Queue.offer(pending, [input, done]), Deferred.await(done)))
  })
