import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, Ref, TestClock } from "effect"
import * as Consumer from "../src/Consumer.js"
import type * as PgWatch from "../src/PgWatch.js"
import type { PgWatchError } from "../src/PgWatchError.js"
import { describeHandlerError, lagOf } from "../src/internal/handling.js"

// The pure parts of a consumer: its retry backoff, declaration checks, error texts, lag.
describe("Consumer", () => {
  it.effect("retrySchedule: exponential from the base delay, jittered, each delay capped, at most maxRetries", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make<Array<number>>([])
      const failing = Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        yield* Ref.update(attempts, (a) => [...a, now])
        return yield* new Consumer.Retryable({ message: "down" })
      })
      const policy = { baseDelay: Duration.seconds(1), maxDelay: Duration.seconds(5), maxRetries: 5 }
      const fiber = yield* Effect.fork(Effect.retry(failing, Consumer.retrySchedule(policy)))
      for (let i = 0; i < 400; i++) yield* TestClock.adjust("100 millis")
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Failure")
      const times = yield* Ref.get(attempts)
      expect(times).toHaveLength(6)
      const delays = times.slice(1).map((t, i) => t - times[i]!)
      delays.forEach((delay, i) => {
        const exponential = 1000 * 2 ** i
        // Jitter is 80-120% of the exponential delay; the cap wins when it is shorter.
        expect(delay).toBeGreaterThanOrEqual(Math.min(0.8 * exponential, 5000) - 100)
        expect(delay).toBeLessThanOrEqual(Math.min(1.2 * exponential, 5000) + 100)
      })
      expect(delays.slice(3).map(Math.round)).toEqual([5000, 5000])
    }))

  it("validate names the consumer and the fix", () => {
    const base = { id: "orders", channels: ["orders"], concurrency: 1 }
    expect(Consumer.validate(base)._tag).toBe("Right")
    const problem = (overrides: Partial<typeof base>) => {
      const result = Consumer.validate({ ...base, ...overrides })
      return result._tag === "Left" ? result.left.message : undefined
    }
    expect(problem({ channels: ["orders", "bad name"] })).toMatch(/^consumer "orders": invalid channel name "bad name"/)
    expect(problem({ channels: ["x".repeat(64)] })).toMatch(/^consumer "orders": invalid channel name/)
    expect(problem({ channels: [] })).toBe(`consumer "orders": give it at least one channel, e.g. \`channels: ["orders"]\``)
    expect(problem({ channels: ["a", "b", "a"] })).toBe(`consumer "orders": channel "a" is listed twice; list each channel once`)
    expect(problem({ id: "tab\\there".replace("\\t", "\t") })).toMatch(/its id must be 1 to 200 printable characters/)
    expect(problem({ id: "x".repeat(201) })).toMatch(/its id must be/)
    expect(problem({ concurrency: -1 })).toBe(`consumer "orders": concurrency must be a positive whole number, got -1`)
    expect(problem({ concurrency: Number.NaN })).toMatch(/got NaN/)
    // From untyped code (a config file's module): described, never a throw of its own.
    const untyped = (value: object) => Consumer.validate({ ...base, ...value })
    expect(untyped({ id: 10n })).toMatchObject({ left: { message: "consumer 10n: its id must be 1 to 200 printable characters without surrounding spaces" } })
    expect(untyped({ channels: [7] })).toMatchObject({ left: { message: `consumer "orders": a channel name is a string, got 7` } })
  })

  it("describeHandlerError never throws, whatever the cause holds", () => {
    expect(describeHandlerError(new Consumer.Permanent({ message: "refused", cause: { amount: 10n } }))).toBe(`refused: {"amount":10n}`)
    expect(describeHandlerError(new Consumer.Retryable({ message: "down" }))).toBe("down")
    const cyclic: Record<string, unknown> = {}
    cyclic.again = cyclic
    expect(describeHandlerError(new Consumer.Retryable({ message: "loop", cause: cyclic }))).toBe(`loop: {"again":[Circular]}`)
  })

  it("lag is seconds since creation, 0 when the time has no age", () => {
    expect(lagOf(10_000, new Date(7_500))).toBe(2.5)
    expect(lagOf(10_000, Number.POSITIVE_INFINITY)).toBe(0)
    expect(lagOf(10_000, Number.NEGATIVE_INFINITY)).toBe(0)
    expect(lagOf(10_000, new Date(Number.NaN))).toBe(0)
    expect(lagOf(10_000, new Date(20_000))).toBe(0)
  })

  it("a layer requires the services its handler needs: leaving one out is a type error (checked by tsc)", () => {
    class Mailer extends Context.Tag("Mailer")<Mailer, { readonly send: (to: string) => Effect.Effect<void> }>() {}
    const mailer = Consumer.make({
      id: "mailer",
      channels: ["orders"],
      handle: () => Effect.flatMap(Mailer, (m) => m.send("ada@example.com"))
    })
    const provided: Layer.Layer<never, PgWatchError, PgWatch.PgWatch> = Consumer.layer(mailer).pipe(
      Layer.provide(Layer.succeed(Mailer, { send: () => Effect.void }))
    )
    // @ts-expect-error Mailer is still required: an app cannot launch it without providing it
    const missing: Layer.Layer<never, PgWatchError, PgWatch.PgWatch> = Consumer.layer(mailer)
    expect([Layer.isLayer(provided), Layer.isLayer(missing)]).toEqual([true, true])
  })
})
