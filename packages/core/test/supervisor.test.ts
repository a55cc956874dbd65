import { describe, expect, it } from "@effect/vitest"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Deferred, Duration, Effect, Fiber, FiberId, Logger, Ref, TestClock } from "effect"
import { diagnose, restartDelay, supervise } from "../src/internal/supervisor.js"
import { PgWatchError } from "../src/PgWatchError.js"

const pgError = (code: string, message: string) =>
  new SqlError({ cause: Object.assign(new Error(message), { code }), message: "Failed to execute statement" })

const diagnoseFailure = (error: unknown) => diagnose("orders", "pgwatch", Cause.fail(error))

// What the supervisor makes of the ways a run can end: no database needed.
describe("supervisor", () => {
  describe("diagnose", () => {
    it("a missing table grant is a misconfiguration whose fix names the grant", () => {
      expect(diagnoseFailure(pgError("42501", "permission denied for table dead_letter"))).toEqual({
        _tag: "Misconfigured",
        description: "permission denied for table dead_letter (SQLSTATE 42501)",
        fix: "grant SELECT, INSERT, UPDATE on pgwatch.dead_letter to the consumer's role"
      })
      expect(diagnoseFailure(pgError("42501", "permission denied for schema pgwatch"))).toMatchObject({
        fix: "grant USAGE on schema pgwatch to the consumer's role"
      })
      expect(diagnoseFailure(pgError("42501", "permission denied for function next_page"))).toMatchObject({
        fix: "grant EXECUTE on function pgwatch.next_page to the consumer's role"
      })
      expect(diagnose("orders", "pgwatch", Cause.fail(pgError("42501", "permission denied for table consumer")), "app")).toMatchObject({
        fix: "grant SELECT, INSERT, UPDATE on pgwatch.consumer to app"
      })
      expect(diagnose("orders", "pgwatch", Cause.fail(pgError("42501", "permission denied for table waiting")), "App User")).toMatchObject({
        fix: `grant SELECT, INSERT, UPDATE, DELETE on pgwatch.waiting to "App User"`
      })
      expect(diagnoseFailure(pgError("42501", "permission denied for table somewhere_else"))).toMatchObject({
        fix: "run `pgwatch grant <role> --as consumer` as the owner of schema pgwatch"
      })
    })

    it("an unmigrated schema is a misconfiguration fixed by migrating", () => {
      for (const [code, message] of [["42P01", `relation "pgwatch.consumer" does not exist`], ["42883", "function pgwatch.next_page does not exist"], ["3F000", `schema "pgwatch" does not exist`]]) {
        expect(diagnoseFailure(pgError(code!, message!))).toEqual({
          _tag: "Misconfigured",
          description: `${message} (SQLSTATE ${code})`,
          fix: "the pgwatch schema pgwatch is missing or out of date: run `pgwatch migrate`"
        })
      }
      const notMigrated = new PgWatchError({ reason: "NotMigrated", message: "1 migration pending" })
      expect(diagnoseFailure(notMigrated)).toMatchObject({ _tag: "Misconfigured", fix: "run `pgwatch migrate`" })
    })

    it("a missing service and a Config error are fatal, as failures or defects", () => {
      class Missing extends Error {}
      const defect = new Missing("Service not found: Mailer (defined at file:///app/mailer.ts:3:14)")
      const fatal = diagnose("orders", "pgwatch", Cause.die(defect))
      expect(fatal).toMatchObject({ _tag: "Fatal", error: { reason: "Config" } })
      expect(fatal._tag === "Fatal" && fatal.error.message).toMatch(/^consumer "orders" needs service Mailer, which is not provided/)
      const config = new PgWatchError({ reason: "Config", message: "bad" })
      expect(diagnose("orders", "pgwatch", Cause.die(config))).toEqual({ _tag: "Fatal", error: config })
      expect(diagnoseFailure(config)).toEqual({ _tag: "Fatal", error: config })
    })

    it("anything else is transient, described in one line", () => {
      expect(diagnoseFailure(pgError("57P01", "terminating connection due to administrator command"))).toEqual({
        _tag: "Transient",
        description: "terminating connection due to administrator command (SQLSTATE 57P01)"
      })
      expect(diagnose("orders", "pgwatch", Cause.die(new TypeError("x.getTime is not a function")))).toEqual({
        _tag: "Transient",
        description: "TypeError: x.getTime is not a function"
      })
      expect(diagnose("orders", "pgwatch", Cause.die({ amount: 10n }))).toEqual({ _tag: "Transient", description: `{"amount":10n}` })
      expect(diagnose("orders", "pgwatch", Cause.interrupt(FiberId.none))).toEqual({ _tag: "Transient", description: "interrupted" })
    })
  })

  it("restart delays double from the base, capped", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 100].map((n) => Duration.toMillis(restartDelay(n, Duration.millis(500), Duration.seconds(30))))
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000])
  })

  it.effect("restarts after a failure and after a defect, on the backoff, one line each, and stops on request", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel.label !== "DEBUG") lines.push(`${logLevel.label} ${String(Array.isArray(message) ? message[0] : message)}`)
      })
      const stop = yield* Deferred.make<void>()
      const runs = yield* Ref.make<Array<number>>([])
      const third = yield* Deferred.make<void>()
      const run = Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const started = yield* Ref.updateAndGet(runs, (r) => [...r, now])
        if (started.length === 1) return yield* Effect.fail(pgError("57P01", "terminating connection"))
        if (started.length === 2) return yield* Effect.die(new RangeError("Maximum call stack size exceeded"))
        yield* Deferred.succeed(third, undefined)
        yield* Deferred.await(stop)
      })
      const fiber = yield* supervise(run, {
        consumerId: "orders",
        schema: "pgwatch",
        baseDelay: Duration.seconds(1),
        maxDelay: Duration.seconds(30),
        stop
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.fork)
      yield* TestClock.adjust("999 millis")
      expect(yield* Ref.get(runs)).toEqual([0])
      yield* TestClock.adjust("1 milli")
      yield* TestClock.adjust("2 seconds")
      yield* Deferred.await(third)
      expect(yield* Ref.get(runs)).toEqual([0, 1000, 3000])
      expect(lines).toEqual([
        "WARN pgwatch: consumer orders stopped on an error (failure 1); restarting in 1s: terminating connection (SQLSTATE 57P01)",
        "WARN pgwatch: consumer orders stopped on an error (failure 2); restarting in 2s: RangeError: Maximum call stack size exceeded"
      ])
      yield* Deferred.succeed(stop, undefined)
      yield* Fiber.join(fiber)
    }))

  it.effect("the backoff starts again after a run that lasted the longest delay", () =>
    Effect.gen(function*() {
      const stop = yield* Deferred.make<void>()
      const runs = yield* Ref.make<Array<number>>([])
      const run = Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const count = (yield* Ref.updateAndGet(runs, (r) => [...r, now])).length
        // The third run lasts a minute before failing: the next delay is the first again.
        if (count === 3) yield* Effect.sleep("60 seconds")
        return yield* Effect.fail(pgError("57P01", "terminating connection"))
      })
      const fiber = yield* Effect.fork(supervise(run, {
        consumerId: "orders",
        schema: "pgwatch",
        baseDelay: Duration.seconds(1),
        maxDelay: Duration.seconds(30),
        stop
      }))
      for (let i = 0; i < 70; i++) yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(runs)).toEqual([0, 1000, 3000, 64000, 66000, 70000])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a misconfiguration is logged once and retried quietly at the longest delay", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel.label !== "DEBUG") lines.push(`${logLevel.label} ${String(Array.isArray(message) ? message[0] : message)}`)
      })
      const stop = yield* Deferred.make<void>()
      const runs = yield* Ref.make(0)
      const run = Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.fail(pgError("42501", "permission denied for table dead_letter")))
      const fiber = yield* supervise(run, {
        consumerId: "orders",
        schema: "pgwatch",
        baseDelay: Duration.seconds(1),
        maxDelay: Duration.seconds(30),
        stop
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.fork)
      yield* TestClock.adjust("29 seconds")
      expect(yield* Ref.get(runs)).toBe(1)
      for (let i = 0; i < 3; i++) yield* TestClock.adjust("30 seconds")
      expect(yield* Ref.get(runs)).toBe(4)
      expect(lines).toEqual([
        "ERROR pgwatch: consumer orders cannot run: permission denied for table dead_letter (SQLSTATE 42501); " +
        "grant SELECT, INSERT, UPDATE on pgwatch.dead_letter to the consumer's role. Retrying every 30s without logging again"
      ])
      // A stop during the wait ends it at once.
      yield* Deferred.succeed(stop, undefined)
      yield* Fiber.join(fiber)
    }))

  it.effect("a fatal error stops the consumer and fails the fatal signal; interruption stops it too", () =>
    Effect.gen(function*() {
      const stop = yield* Deferred.make<void>()
      const fatal = yield* Deferred.make<void, PgWatchError>()
      const runs = yield* Ref.make(0)
      const run = Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.die(new Error("Service not found: Mailer")))
      yield* supervise(run, { consumerId: "orders", schema: "pgwatch", baseDelay: Duration.seconds(1), maxDelay: Duration.seconds(30), stop, fatal })
      expect(yield* Ref.get(runs)).toBe(1)
      const error = yield* Effect.flip(Deferred.await(fatal))
      expect(error.message).toMatch(/^consumer "orders" needs service Mailer/)

      const forever = yield* Effect.fork(supervise(Effect.never, {
        consumerId: "orders",
        schema: "pgwatch",
        baseDelay: Duration.seconds(1),
        maxDelay: Duration.seconds(30),
        stop: yield* Deferred.make<void>()
      }))
      const exit = yield* Fiber.interrupt(forever)
      expect(exit._tag === "Failure" && Cause.isInterruptedOnly(exit.cause)).toBe(true)
    }))

  it.effect("a run interrupted from inside (not the supervisor) is restarted like any other end", () =>
    Effect.gen(function*() {
      const stop = yield* Deferred.make<void>()
      const runs = yield* Ref.make(0)
      const second = yield* Deferred.make<void>()
      const run = Effect.gen(function*() {
        if ((yield* Ref.updateAndGet(runs, (n) => n + 1)) === 1) return yield* Effect.interrupt
        yield* Deferred.succeed(second, undefined)
        yield* Deferred.await(stop)
      })
      const fiber = yield* Effect.fork(supervise(run, {
        consumerId: "orders",
        schema: "pgwatch",
        baseDelay: Duration.seconds(1),
        maxDelay: Duration.seconds(30),
        stop
      }))
      yield* TestClock.adjust("1 second")
      yield* Deferred.await(second)
      yield* Deferred.succeed(stop, undefined)
      expect((yield* Fiber.await(fiber))._tag).toBe("Success")
    }))
})
