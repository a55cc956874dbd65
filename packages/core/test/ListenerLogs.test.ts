import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Logger, TestClock } from "effect"
import * as NodeCrypto from "node:crypto"
import * as Pg from "pg"
import * as Listener from "../src/internal/listener.js"
import { livePayload } from "./livePayload.js"
import { databaseUrl, freshChannel, freshSchema, query, rawClient } from "./utils.js"

// TestClock (it.scoped), kept apart from files using it.layer (see ListenerHealth.test.ts).

/** Real time passing, for sockets, while the test clock stands still. */
const realSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** Runs a test with its log lines kept in `lines`. */
const withLogs = <A, E, R>(test: (lines: Array<string>) => Effect.Effect<A, E, R>) => {
  const lines: Array<string> = []
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) => {
      const annotated = [...annotations].map(([key, value]) => ` ${key}=${String(value)}`).join("")
      lines.push(`${logLevel.label} ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}${annotated}`)
    })
  )
  return Effect.provide(test(lines), logger)
}

const setup = Effect.gen(function*() {
  const schema = freshSchema()
  const key = NodeCrypto.randomBytes(32)
  const sender = yield* rawClient
  const listener = yield* Listener.make({
    connect: () => new Pg.Client({ connectionString: databaseUrl }),
    sendProbe: (channel, payload) => query(sender, "SELECT pg_notify($1, $2)", [channel, payload]),
    fetchKey: Effect.succeed(key),
    schema,
    // No health check while the test moves the clock by a minute.
    healthCheckInterval: Duration.hours(1),
    healthCheckTimeout: Duration.seconds(5),
    reconnectDelay: Duration.millis(100),
    maxReconnectDelay: Duration.seconds(1),
    fallbackPollInterval: Duration.millis(250)
  })
  return { schema, key, sender, listener }
})

describe("listener logs", () => {
  it.scoped("2,000 junk NOTIFYs with newlines and ANSI escapes give two warning lines, escaped", () =>
    withLogs((lines) => Effect.gen(function*() {
      const { listener, schema, sender } = yield* setup
      const channel = freshChannel()
      const events = yield* listener.subscribe([channel])
      expect((yield* events.take)._tag).toBe("Listening")

      // Distinct payloads (identical ones in one transaction are merged), each trying to
      // forge a log line and to colour the terminal.
      yield* query(
        sender,
        `SELECT pg_notify($1, 'junk ' || i || E'\\nERROR pgwatch: forged line \\u001b[31mred\\u001b[0m\\r\\u0007')
           FROM generate_series(1, 2000) AS i`,
        [channel]
      )
      // A real wake-up after them: once it is heard, every junk NOTIFY has been routed.
      yield* query(sender, "SELECT pg_notify($1, json_build_object('pgwatch', 1, 'schema', $2::text)::text)", [channel, schema])
      expect((yield* events.take)._tag).toBe("Wake")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^WARN pgwatch: ignored a NOTIFY on channel "ch_\w+" \(the payload is not JSON\): payload "junk 1\\nERROR pgwatch: forged line \\u001b\[31mred/)

      // The rest are counted and reported once the interval has passed.
      yield* TestClock.adjust("1 minute")
      for (let i = 0; i < 200 && lines.length < 2; i++) yield* realSleep(10)
      expect(lines, lines.join("\n")).toHaveLength(2)
      expect(lines[1]).toMatch(/^WARN pgwatch: ignored 1999 more foreign NOTIFY\(s\) on channel "ch_\w+" in the last 1m/)
      expect(lines.filter((line) => CONTROL.test(line))).toEqual([])
    })))

  it.scoped("forged live rows (wrong key, or signed for another channel) are never delivered, and are reported", () =>
    withLogs((lines) => Effect.gen(function*() {
      const { key, listener, schema, sender } = yield* setup
      const channel = freshChannel()
      const other = freshChannel()
      const events = yield* listener.subscribe([channel])
      expect((yield* events.take)._tag).toBe("Listening")
      const row = { id: 7, body: `{"amount": 1000000}` }
      const forged = livePayload(NodeCrypto.randomBytes(32), channel, schema, row)
      const replayed = livePayload(key, other, schema, row)
      const genuine = livePayload(key, channel, schema, { id: 8, body: "1" })
      yield* query(sender, "SELECT pg_notify($1, $2), pg_notify($1, $3), pg_notify($1, $2 || ' ')", [channel, forged, replayed])
      // Sent after them: once it is heard, the forged ones have been routed.
      yield* query(sender, "SELECT pg_notify($1, $2)", [channel, genuine])
      expect(yield* events.take).toMatchObject({ _tag: "Row", id: 8n })
      expect(yield* events.takeAll).toEqual([])
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(
        /^WARN pgwatch: ignored a NOTIFY on channel "ch_\w+" \(signature failure: a live-row NOTIFY whose signature does not verify\)/
      )
      yield* TestClock.adjust("1 minute")
      for (let i = 0; i < 200 && lines.length < 2; i++) yield* realSleep(10)
      expect(lines[1]).toMatch(
        /^WARN pgwatch: ignored 2 more foreign NOTIFY\(s\) on channel "ch_\w+" in the last 1m \(2 of them live rows failing signature verification\)$/
      )
    })))

  it.scoped("a lost listen connection is one log line with PostgreSQL's message and code, not a consumer's", () =>
    withLogs((lines) => Effect.gen(function*() {
      const { listener, sender } = yield* setup
      // The connection is the process's: the consumer that happened to subscribe first does not own it.
      const events = yield* listener.subscribe([freshChannel()]).pipe(Effect.annotateLogs("consumer", "first_subscriber"))
      const listening = yield* events.take
      expect(listening._tag).toBe("Listening")
      yield* query(sender, "SELECT pg_terminate_backend($1)", [listening._tag === "Listening" ? listening.pid : 0])
      const lost = yield* events.take
      expect(lost).toMatchObject({ _tag: "Lost", reason: expect.stringContaining("terminating connection due to administrator command (57P01)") })
      for (let i = 0; i < 200 && lines.length < 1; i++) yield* realSleep(10)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^WARN pgwatch: listen connection lost \(.*\(57P01\)\); reconnecting in \d+ms$/)
    })))
})
