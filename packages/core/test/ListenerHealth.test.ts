import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, TestClock } from "effect"
import * as NodeCrypto from "node:crypto"
import * as Pg from "pg"
import * as Listener from "../src/internal/listener.js"
import { makeProxy } from "./proxy.js"
import { databaseUrl, freshChannel, freshSchema } from "./utils.js"

// Kept apart from files using it.layer: @effect/vitest 0.30's it.layer replaces the module's
// `it.effect`/`it.scoped`, which would drop the TestClock these tests drive.

/** Real time passing, for sockets, while the test clock stands still. */
const realSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** Moves the test clock a step at a time until the listener reports `tag`. */
const advanceUntil = (events: Listener.Subscription, tag: Listener.ListenerEvent["_tag"], step: Duration.DurationInput) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const event = (yield* events.takeAll).find((event) => event._tag === tag)
      if (event !== undefined) return { event, elapsed: i }
      yield* TestClock.adjust(step)
      // Room for real I/O (a connection, its delivery probe) between two steps.
      yield* realSleep(50)
    }
    return yield* Effect.dieMessage(`no ${tag} event`)
  })

/** A client of its own that sends the listener's delivery probes, and how many it has sent. */
const probeSender = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Pg.Client({ connectionString: databaseUrl })
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.end().catch(() => undefined))
).pipe(Effect.map((client) => {
  let sent = 0
  return {
    sent: () => sent,
    send: (channel: string, payload: string) =>
      Effect.promise(() => client.query("SELECT pg_notify($1, $2)", [channel, payload])).pipe(
        Effect.tap(() => Effect.sync(() => sent++))
      )
  }
}))

/** Checks every 10 s with a 5 s time-out; reconnects after 100 ms. */
const makeListener = (connect: () => Pg.Client) =>
  Effect.gen(function*() {
    const probes = yield* probeSender
    const listener = yield* Listener.make({
      connect,
      sendProbe: probes.send,
      fetchKey: Effect.succeed(NodeCrypto.randomBytes(32)),
      schema: freshSchema(),
      healthCheckInterval: Duration.seconds(10),
      healthCheckTimeout: Duration.seconds(5),
      reconnectDelay: Duration.millis(100),
      maxReconnectDelay: Duration.seconds(1),
      fallbackPollInterval: Duration.millis(250)
    })
    return { listener, probes }
  })

describe("listener health check (TestClock)", () => {
  it.scoped("a half-open connection is noticed by the timed health check, then replaced", () =>
    Effect.gen(function*() {
      const url = new URL(databaseUrl)
      const proxy = yield* makeProxy({ host: url.hostname, port: Number(url.port || 5432) })
      const { listener } = yield* makeListener(() =>
        new Pg.Client({
          host: "127.0.0.1",
          port: proxy.port,
          user: decodeURIComponent(url.username),
          password: decodeURIComponent(url.password),
          database: url.pathname.slice(1)
        })
      )
      const events = yield* listener.subscribe([freshChannel()])
      expect((yield* events.take)._tag).toBe("Listening")

      proxy.freeze()
      // The socket reports nothing: without the timer, nobody would ever know.
      yield* realSleep(300)
      expect(yield* events.takeAll).toEqual([])

      // Health check after 10 s, its 5 s time-out: lost within 15 s of test time.
      const lost = yield* advanceUntil(events, "Lost", "1 second")
      expect(lost.elapsed).toBeGreaterThanOrEqual(10)
      expect(lost.elapsed).toBeLessThanOrEqual(16)
      expect(lost.event._tag === "Lost" && lost.event.reason).toContain("health check")

      proxy.thaw()
      const back = yield* advanceUntil(events, "Listening", "100 millis")
      expect(back.event._tag).toBe("Listening")
    }))

  it.scoped("a healthy connection passes its checks and is kept", () =>
    Effect.gen(function*() {
      let probesArrived = 0
      const { listener, probes } = yield* makeListener(() => {
        const client = new Pg.Client({ connectionString: databaseUrl })
        client.on("notification", (message) => message.channel.startsWith("pgwatch_probe_") && probesArrived++)
        return client
      })
      const events = yield* listener.subscribe([freshChannel()])
      expect((yield* events.take)._tag).toBe("Listening")
      for (let i = 1; i <= 6; i++) {
        // Each check sends a probe through the pool and it comes back before its time-out:
        // the check has passed once the next one is scheduled, 10 s on (other timers may
        // already wait for that instant).
        const next = (yield* TestClock.currentTimeMillis) + 20_000
        const waitingForNext = Effect.map(TestClock.sleeps(), Chunk.reduce(0, (n, at) => at === next ? n + 1 : n))
        const before = yield* waitingForNext
        yield* TestClock.adjust("10 seconds")
        while ((yield* waitingForNext) === before) yield* realSleep(10)
        expect(probesArrived).toBe(i + 1)
      }
      expect(probes.sent()).toBe(7)
      expect(yield* events.takeAll).toEqual([])
    }))
})
