/**
 * The README's testing example: a consumer's handler tested without a database, with retry
 * delays driven by TestClock. Runs with the rest of the suite.
 */
import { expect, it } from "@effect/vitest"
import { Consumer, ConsumerTest } from "@pgwatch/core"
import { Effect, Fiber, Ref, Schedule, Schema, TestClock } from "effect"

const Order = Schema.Struct({ id: Schema.Number, email: Schema.String })

const makeMailer = (outbox: Ref.Ref<Array<string>>, failuresLeft: Ref.Ref<number>) =>
  Consumer.make({
    id: "mailer",
    channels: ["orders"],
    schema: Order,
    retry: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(3))),
    handle: (n) =>
      Effect.gen(function*() {
        if ((yield* Ref.getAndUpdate(failuresLeft, (k) => k - 1)) > 0) {
          return yield* new Consumer.Retryable({ message: "SMTP server busy" })
        }
        yield* Ref.update(outbox, (sent) => [...sent, n.payload.email])
      })
  })

it.effect("sends the mail once the server answers, retrying with backoff", () =>
  Effect.gen(function*() {
    const outbox = yield* Ref.make<Array<string>>([])
    const mailer = makeMailer(outbox, yield* Ref.make(2))
    const run = yield* Effect.fork(ConsumerTest.run(mailer, [{ payload: { id: 1, email: "ada@example.com" } }]))
    yield* TestClock.adjust("1 second") // first retry
    expect(yield* Ref.get(outbox)).toEqual([])
    yield* TestClock.adjust("2 seconds") // second retry succeeds
    const [result] = yield* Fiber.join(run)
    expect(result!.outcome).toEqual({ _tag: "Handled", attempts: 3 })
    expect(yield* Ref.get(outbox)).toEqual(["ada@example.com"])
  }))

it.effect("dead-letters an order that does not match the schema", () =>
  Effect.gen(function*() {
    const mailer = makeMailer(yield* Ref.make<Array<string>>([]), yield* Ref.make(0))
    const [result] = yield* ConsumerTest.run(mailer, [{ payload: { id: "oops" } }])
    expect(result!.outcome).toMatchObject({ _tag: "DeadLettered", reason: "invalid-payload" })
  }))
