import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Queue } from "effect"
import * as Batcher from "../src/internal/batcher.js"

describe("batched calls", () => {
  it.scoped("calls made while a batch runs go together in the next; each gets its own result", () =>
    Effect.gen(function*() {
      const batches = yield* Queue.unbounded<ReadonlyArray<number>>()
      const release = yield* Deferred.make<void>()
      const call = yield* Batcher.make((batch: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          yield* Queue.offer(batches, batch)
          yield* Deferred.await(release)
          return batch.map((n) => n * 10)
        }), 100)
      const first = yield* Effect.fork(call(1))
      expect(yield* Queue.take(batches)).toEqual([1])
      // The first batch is running: these wait for it (suspended once queued), then go in one batch.
      const rest = yield* Effect.forEach([2, 3, 4], (n) => Effect.fork(call(n)))
      yield* Effect.forEach(rest, (fiber) =>
        Effect.repeat(Effect.zipRight(Effect.yieldNow(), fiber.status), { until: (s) => s._tag === "Suspended" }))
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.join(first)).toBe(10)
      expect(yield* Queue.take(batches)).toEqual([2, 3, 4])
      expect(yield* Fiber.join(Fiber.all(rest))).toEqual([20, 30, 40])
    }))

  it.scoped("a failed batch fails each of its calls", () =>
    Effect.gen(function*() {
      const call = yield* Batcher.make((_: ReadonlyArray<number>) => Effect.fail("no database"), 100)
      expect(yield* Effect.flip(call(1))).toBe("no database")
    }))
})
