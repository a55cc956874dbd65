import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Queue } from "effect"
import * as Consumer from "../src/Consumer.js"
import type { Notification } from "../src/Notification.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, takeN, watchLayer } from "./utils.js"

const savedHandled = (consumerId: string) =>
  Effect.gen(function*() {
    const { sql, settings } = yield* PgWatch.PgWatch
    const rows = yield* sql<{ handled: string }>`
      SELECT handled::text FROM ${sql(settings.schema)}.consumer WHERE id = ${consumerId}`
    return Number(rows[0]!.handled)
  })

/** A consumer whose handler reports each start, waits at `gate` for the ids in `held`, and reports each end. */
const gatedConsumer = (id: string, channel: string, concurrency: number, held: ReadonlyArray<bigint>) =>
  Effect.gen(function*() {
    const started = yield* Queue.unbounded<Notification<unknown>>()
    const finished = yield* Queue.unbounded<Notification<unknown>>()
    const gate = yield* Deferred.make<void>()
    const consumer = Consumer.make({
      id,
      channels: [channel],
      concurrency,
      handle: (n) =>
        Queue.offer(started, n).pipe(
          Effect.zipRight(held.includes(n.id) ? Deferred.await(gate) : Effect.void),
          Effect.zipRight(Queue.offer(finished, n))
        )
    })
    return { consumer, started, finished, open: Deferred.succeed(gate, undefined) }
  })

describe("progress", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("a later notification handled before an earlier one does not move the position past it", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const ids = yield* PgWatch.notifyMany(channel, [1, 2, 3, 4, 5, 6])
        const { consumer, finished } = yield* gatedConsumer("prefix", channel, 3, [ids[0]!])
        const stop = yield* Deferred.make<void>()
        const run = yield* Effect.fork(Consumer.runUntil(consumer, stop))
        // All but the first are handled; the first is still running.
        expect((yield* takeN(finished, 5)).map((n) => n.id)).toEqual(ids.slice(1))
        // Cut short (as the shutdown time-out does): what is saved must not pass the first.
        yield* Fiber.interrupt(run)
        expect(yield* savedHandled("prefix")).toBe(0)

        const again = yield* gatedConsumer("prefix", channel, 3, [])
        const stopAgain = yield* Deferred.make<void>()
        const rerun = yield* Effect.fork(Consumer.runUntil(again.consumer, stopAgain))
        const redone = yield* takeN(again.finished, 6)
        expect(redone.map((n) => n.id).sort()).toEqual([...ids].sort())
        yield* Deferred.succeed(stopAgain, undefined)
        yield* Fiber.join(rerun)
      }))

    it.effect("a graceful stop starts no new handler, lets started ones finish, saves them, and the restart redoes none", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const ids = yield* PgWatch.notifyMany(channel, Array.from({ length: 10 }, (_, i) => i))
        const first = yield* gatedConsumer("graceful", channel, 2, ids.slice(0, 2))
        const stop = yield* Deferred.make<void>()
        const run = yield* Effect.fork(Consumer.runUntil(first.consumer, stop))
        yield* takeN(first.started, 2)
        yield* Deferred.succeed(stop, undefined)
        yield* first.open
        yield* Fiber.join(run)
        expect(yield* Queue.takeAll(first.started)).toHaveLength(0)
        expect([...(yield* Queue.takeAll(first.finished))].map((n) => n.id).sort()).toEqual(ids.slice(0, 2).sort())
        expect(yield* savedHandled("graceful")).toBe(2)

        const second = yield* gatedConsumer("graceful", channel, 2, [])
        const stopSecond = yield* Deferred.make<void>()
        const rerun = yield* Effect.fork(Consumer.runUntil(second.consumer, stopSecond))
        expect((yield* takeN(second.finished, 8)).map((n) => n.id)).toEqual(ids.slice(2))
        yield* Deferred.succeed(stopSecond, undefined)
        yield* Fiber.join(rerun)
        expect(yield* Queue.takeAll(second.started)).toHaveLength(8)
        expect(yield* savedHandled("graceful")).toBe(10)
      }))
  })
})
