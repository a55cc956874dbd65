// The reader's timing on the Clock, with the database real: TestClock moves the poll timer.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { goLive, schemaOf, sentinel, subscribe, take } from "./liveSupport.js"
import { freshChannel, query, rawClient, watchLayer } from "./utils.js"

describe("the backfill timer (TestClock)", () => {
  it.scoped("a caught-up reader reads the log again exactly when its poll interval has passed on the Clock", () =>
    Effect.gen(function*() {
      const channel = freshChannel()
      const schema = yield* schemaOf
      const deliveries = yield* subscribe("timer", [channel])
      // Until it is live, time runs (the registration's re-checks wait on the Clock).
      const ticking = yield* Effect.forkScoped(Effect.forever(Effect.zipRight(TestClock.adjust("1 millis"), Effect.yieldNow())))
      yield* goLive(channel, deliveries)
      yield* Fiber.interrupt(ticking)
      // Time stands still: a row written without a NOTIFY is not read...
      const owner = yield* rawClient
      const lost = yield* query(
        owner,
        `INSERT INTO ${schema}.notification_log (channel, payload) VALUES ($1, '{"lost": true}') RETURNING id::text`,
        [channel]
      )
      // ...as a live row written after it shows: it comes first, alone.
      yield* sentinel(channel, deliveries)
      // An hour on the Clock later, the backfill finds it.
      yield* TestClock.adjust("1 hour")
      const [found] = yield* take(deliveries, 1)
      expect(found!.id).toBe(BigInt(lost.rows[0].id))
    }).pipe(Effect.provide(watchLayer({
      pollInterval: "1 hour",
      // The listen connection's checks run on the Clock too: none within the test's time.
      healthCheckInterval: "1 day",
      healthCheckTimeout: "1 day"
    }))), { timeout: 60_000 })
})
