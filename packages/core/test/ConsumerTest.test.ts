import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, Ref, Schedule, Schema, TestClock } from "effect"
import * as Consumer from "../src/Consumer.js"
import * as ConsumerTest from "../src/ConsumerTest.js"

// Handler logic without a database: retries, dead letters and their timing under TestClock.
describe("ConsumerTest", () => {
  it.effect("retries a retryable error on the schedule, then succeeds", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const consumer = Consumer.make({
        id: "flaky",
        channels: ["orders"],
        retry: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(5))),
        handle: () =>
          Effect.gen(function*() {
            const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
            const seen = yield* Ref.updateAndGet(calls, (c) => [...c, now])
            if (seen.length < 3) return yield* new Consumer.Retryable({ message: "not yet" })
          })
      })
      const fiber = yield* Effect.fork(ConsumerTest.run(consumer, [{ payload: { id: 1 } }]))
      yield* TestClock.adjust("1 second") // first retry after 1 s
      yield* TestClock.adjust("2 seconds") // second after 2 s more
      const [result] = yield* Fiber.join(fiber)
      expect(result!.outcome).toEqual({ _tag: "Handled", attempts: 3 })
      expect(yield* Ref.get(calls)).toEqual([0, 1000, 3000])
    }))

  it.effect("does not retry before the delay has passed", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const consumer = Consumer.make({
        id: "patient",
        channels: ["orders"],
        retry: Schedule.spaced("10 seconds").pipe(Schedule.intersect(Schedule.recurs(1))),
        handle: () => Effect.zipRight(Ref.update(attempts, (n) => n + 1), Effect.fail(new Consumer.Retryable({ message: "down" })))
      })
      const fiber = yield* Effect.fork(ConsumerTest.run(consumer, [{ payload: null }]))
      yield* TestClock.adjust("9 seconds")
      expect(yield* Ref.get(attempts)).toBe(1)
      yield* TestClock.adjust("1 second")
      const [result] = yield* Fiber.join(fiber)
      expect(yield* Ref.get(attempts)).toBe(2)
      expect(result!.outcome).toMatchObject({ _tag: "DeadLettered", reason: "retries-exhausted", attempts: 2 })
    }))

  it.effect("the default policy gives up after 8 retries, with delays capped at 30 s", () =>
    Effect.gen(function*() {
      const consumer = Consumer.make({
        id: "hopeless",
        channels: ["orders"],
        handle: () => Effect.fail(new Consumer.Retryable({ message: "down" }))
      })
      const fiber = yield* Effect.fork(ConsumerTest.run(consumer, [{ payload: 1 }]))
      for (let i = 0; i < 8; i++) yield* TestClock.adjust("30 seconds")
      const [result] = yield* Fiber.join(fiber)
      expect(result!.outcome).toMatchObject({ _tag: "DeadLettered", reason: "retries-exhausted", attempts: 9 })
    }))

  it.effect("a permanent error is dead-lettered at once; a defect is retried like a retryable error", () =>
    Effect.gen(function*() {
      const consumer = Consumer.make({
        id: "mixed",
        channels: ["orders"],
        retry: Schedule.recurs(2),
        handle: (n) =>
          n.payload === "bad"
            ? Effect.fail(new Consumer.Permanent({ message: "cannot ever work" }))
            : Effect.die(new Error("boom"))
      })
      const results = yield* ConsumerTest.run(consumer, [{ payload: "bad" }, { payload: "crash" }])
      expect(results.map((r) => r.outcome)).toMatchObject([
        { _tag: "DeadLettered", reason: "permanent", error: "cannot ever work", attempts: 1 },
        { _tag: "DeadLettered", reason: "retries-exhausted", attempts: 3 }
      ])
      expect(results[1]!.outcome._tag === "DeadLettered" && results[1]!.outcome.error).toContain("boom")
    }))

  it.effect("decodes payloads with the schema; a bad one is dead-lettered without calling the handler", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<number>>([])
      const consumer = Consumer.make({
        id: "typed",
        channels: ["orders"],
        schema: Schema.Struct({ total: Schema.NumberFromString }),
        handle: (n) => Ref.update(seen, (s) => [...s, n.payload.total])
      })
      const results = yield* ConsumerTest.run(consumer, [{ payload: { total: "12.5" } }, { payload: { total: "x" } }])
      expect(yield* Ref.get(seen)).toEqual([12.5])
      expect(results[1]!.outcome).toMatchObject({ _tag: "DeadLettered", reason: "invalid-payload", attempts: 0 })
    }))

  it.effect("a huge payload that fails the schema gives a bounded error text", () =>
    Effect.gen(function*() {
      const consumer = Consumer.make({
        id: "bounded",
        channels: ["orders"],
        schema: Schema.Struct({ total: Schema.Number }),
        handle: () => Effect.void
      })
      const [result] = yield* ConsumerTest.run(consumer, [{ payload: { total: "x".repeat(10_000_000) } }])
      expect(result!.outcome).toMatchObject({ _tag: "DeadLettered", reason: "invalid-payload" })
      const error = result!.outcome._tag === "DeadLettered" ? result!.outcome.error : ""
      expect(error).toMatch(/^\{ readonly total: number \}\n└─ \["total"\]\n   └─ Expected number, actual "xxx/)
      expect(error).toHaveLength(2001)
    }))

  it.effect("a retry schedule that throws gives up on that notification, not on the consumer", () =>
    Effect.gen(function*() {
      const consumer = Consumer.make({
        id: "odd_schedule",
        channels: ["orders"],
        retry: Schedule.recurWhile(() => {
          throw new RangeError("schedule broke")
        }),
        handle: (n) => n.payload === "flaky" ? Effect.fail(new Consumer.Retryable({ message: "down" })) : Effect.void
      })
      const results = yield* ConsumerTest.run(consumer, [{ payload: "flaky" }, { payload: "fine" }])
      expect(results.map((r) => r.outcome)).toEqual([
        { _tag: "DeadLettered", reason: "retries-exhausted", error: "retrying threw: RangeError: schedule broke", attempts: 1 },
        { _tag: "Handled", attempts: 1 }
      ])
    }))

  describe("uses the runtime's retry policy for a consumer without its own schedule", () => {
    const hopeless = Consumer.make({
      id: "hopeless",
      channels: ["orders"],
      handle: () => Effect.fail(new Consumer.Retryable({ message: "down" }))
    })

    it.effect("the policy passed in", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(
          ConsumerTest.run(hopeless, [{ payload: 1 }], { retry: { baseDelay: "1 second", maxDelay: "1 second", maxRetries: 1 } })
        )
        yield* TestClock.adjust("1 second")
        const [result] = yield* Fiber.join(fiber)
        expect(result!.outcome).toMatchObject({ _tag: "DeadLettered", reason: "retries-exhausted", attempts: 2 })
      }))

    it.effect("the one the service's configuration gives (PGWATCH_MAX_RETRIES)", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(ConsumerTest.run(hopeless, [{ payload: 1 }]))
        yield* TestClock.adjust("1 second")
        const [result] = yield* Fiber.join(fiber)
        expect(result!.outcome).toMatchObject({ _tag: "DeadLettered", reason: "retries-exhausted", attempts: 1 })
      }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PGWATCH_MAX_RETRIES", "0"]])))))

    it.effect("a bad policy or setting is an error that says what is wrong, not a defect", () =>
      Effect.gen(function*() {
        const bad = yield* Effect.flip(ConsumerTest.run(hopeless, [{ payload: 1 }], { retry: { maxRetries: -1 } }))
        expect(bad).toMatchObject({ _tag: "PgWatchError", reason: "Config", message: "max retries must be a whole number, got -1" })
        const unreadable = yield* Effect.flip(
          ConsumerTest.run(hopeless, [{ payload: 1 }]).pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PGWATCH_MAX_RETRIES", "many"]])))
          )
        )
        expect(unreadable).toMatchObject({ _tag: "ConfigError", _op: "InvalidData", path: ["PGWATCH_MAX_RETRIES"] })
      }))
  })
})
