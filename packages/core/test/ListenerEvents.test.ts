import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Logger, Option, Scope } from "effect"
import * as NodeCrypto from "node:crypto"
import * as Pg from "pg"
import * as Listener from "../src/internal/listener.js"
import { livePayload, next } from "./livePayload.js"
import { databaseUrl, freshChannel, freshSchema, query, rawClient } from "./utils.js"

// Real time (it.scopedLive): these tests reconnect, which takes the reconnect delay.

const wakePayload = (schema: string, extra: Record<string, unknown> = {}) => JSON.stringify({ pgwatch: 1, schema, ...extra })

/** Sends the payloads on the channel, in one transaction. */
const notifyAll = (client: Pg.Client, channel: string, payloads: ReadonlyArray<string>) =>
  query(client, "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i", [channel, payloads])

const withLogs = <A, E, R>(test: (lines: Array<string>) => Effect.Effect<A, E, R>) => {
  const lines: Array<string> = []
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel.label} ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}`)
    })
  )
  return Effect.provide(test(lines), logger)
}

const setup = (options: { readonly fetchKey?: Effect.Effect<Uint8Array, unknown>; readonly schema?: string } = {}) =>
  Effect.gen(function*() {
    const schema = options.schema ?? freshSchema()
    const key = NodeCrypto.randomBytes(32)
    const sender = yield* rawClient
    const listener = yield* Listener.make({
      connect: () => new Pg.Client({ connectionString: databaseUrl }),
      sendProbe: (channel, payload) => query(sender, "SELECT pg_notify($1, $2)", [channel, payload]),
      fetchKey: options.fetchKey ?? Effect.succeed(key),
      schema,
      healthCheckInterval: Duration.minutes(10),
      healthCheckTimeout: Duration.seconds(10),
      reconnectDelay: Duration.millis(50),
      maxReconnectDelay: Duration.millis(500),
      fallbackPollInterval: Duration.millis(250)
    })
    return { schema, key, sender, listener }
  })

describe("listener events", () => {
  it.scopedLive("a flood of wake-ups and rows drops no Listening or Lost, bounds rows behind one Overflow", () =>
    Effect.gen(function*() {
      const { key, listener, schema, sender } = yield* setup()
      const channel = freshChannel()
      const quiet = freshChannel()
      // `flooded` takes nothing until the end; `watcher`, on a quiet channel, follows the connection.
      const flooded = yield* listener.subscribe([channel])
      const watcher = yield* listener.subscribe([quiet])
      const first = yield* next(watcher, "Listening")
      const flood = (round: number) =>
        notifyAll(
          sender,
          channel,
          Array.from({ length: 5000 }, (_, i) => [
            wakePayload(schema, { n: `${round}.${i}` }),
            livePayload(key, channel, schema, { id: round * 10_000 + i, body: `{"n":${i}}` })
          ]).flat()
        )
      // NOTIFYs are routed in commit order: once the watcher hears the marker, the flood is routed.
      const marker = Effect.zipRight(notifyAll(sender, quiet, [wakePayload(schema)]), next(watcher, "Wake"))

      yield* flood(1)
      yield* marker
      yield* query(sender, "SELECT pg_terminate_backend($1)", [first.pid])
      yield* next(watcher, "Lost")
      const second = yield* next(watcher, "Listening")
      yield* flood(2)
      yield* marker

      const events = yield* flooded.takeAll
      const connection = events.filter((event) => event._tag === "Listening" || event._tag === "Lost")
      expect(connection.map((event) => event._tag === "Listening" ? event.pid : "Lost")).toEqual([first.pid, "Lost", second.pid])
      const count = (tag: Listener.ListenerEvent["_tag"]) => events.filter((event) => event._tag === tag).length
      expect(count("Row")).toBe(1000)
      expect(count("Overflow")).toBe(1)
      // Coalesced: one pending wake-up stands for all 10,000.
      expect(count("Wake")).toBe(1)
      // The Overflow comes right after the last row let in.
      const lastRow = events.reduce((last, event, i) => event._tag === "Row" ? i : last, -1)
      expect(events.findIndex((event) => event._tag === "Overflow")).toBeGreaterThan(lastRow)

      // Once taken, rows are let in again.
      yield* notifyAll(sender, channel, [livePayload(key, channel, schema, { id: 1, body: "1" })])
      expect(yield* next(flooded, "Row")).toMatchObject({ id: 1n, payload: Option.some(1) })
    }))

  it.scopedLive("a verified row reaches every subscriber of its channel as one event with one frozen payload", () =>
    Effect.gen(function*() {
      const { key, listener, schema, sender } = yield* setup()
      const channel = freshChannel()
      const a = yield* listener.subscribe([channel])
      const b = yield* listener.subscribe([channel, freshChannel()])
      yield* notifyAll(sender, channel, [
        livePayload(key, channel, schema, { id: 42, xid: "777", body: `{"order": {"lines": [1, {"sku": "x"}]}, "big": 12345678901234567890}` }),
        livePayload(key, channel, schema, { kind: "i", id: 43, xid: "777" }),
        livePayload(key, channel, schema, { kind: "x", id: 0, xid: "778" })
      ])
      const rowA = yield* next(a, "Row")
      const rowB = yield* next(b, "Row")
      expect(rowA).toBe(rowB)
      expect(rowA).toMatchObject({ channel, id: 42n, xid: "777", createdAt: new Date(1_700_000_000_000) })
      const payload = Option.getOrThrow(rowA.payload) as { order: { lines: [number, { sku: string }] }; big: bigint }
      expect(payload.big).toBe(12345678901234567890n)
      expect(Object.isFrozen(payload)).toBe(true)
      expect(Object.isFrozen(payload.order.lines[1])).toBe(true)
      // Without its payload (too big, or a confidential channel): read it by id.
      expect(yield* next(a, "Row")).toMatchObject({ id: 43n, payload: Option.none() })
      expect(yield* next(a, "ReadXid")).toEqual({ _tag: "ReadXid", channel, xid: "778" })
    }))

  it.scopedLive("a signed row whose payload does not parse is a wake-up, said once", () =>
    withLogs((lines) =>
      Effect.gen(function*() {
        const { key, listener, schema, sender } = yield* setup()
        const channel = freshChannel()
        const events = yield* listener.subscribe([channel])
        yield* next(events, "Listening")
        yield* notifyAll(sender, channel, [livePayload(key, channel, schema, { id: 1, body: "{not json" })])
        expect(yield* events.take).toEqual({ _tag: "Wake", channel, redelivery: false })
        yield* notifyAll(sender, channel, [
          livePayload(key, channel, schema, { id: 2, body: "[" }),
          livePayload(key, channel, schema, { id: 3, body: "3" })
        ])
        expect(yield* events.take).toEqual({ _tag: "Wake", channel, redelivery: false })
        expect(yield* events.take).toMatchObject({ _tag: "Row", id: 3n })
        expect(lines).toEqual([expect.stringMatching(/^WARN pgwatch: the live row 1 on channel "ch_\w+" carried a payload that does not parse/)])
      })
    ))

  it.scopedLive("without the live-row key, this schema's rows are wake-ups and other schemas' are ignored, said once", () =>
    withLogs((lines) =>
      Effect.gen(function*() {
        // A schema without live_key(): what a schema from before live rows gives.
        const schema = freshSchema()
        const admin = yield* rawClient
        yield* query(admin, `CREATE SCHEMA "${schema}"`)
        yield* Effect.addFinalizer(() => query(admin, `DROP SCHEMA "${schema}" CASCADE`))
        const { listener, sender } = yield* setup({
          schema,
          fetchKey: Effect.tryPromise({
            try: () => admin.query(`SELECT "${schema}".live_key() AS key`),
            catch: (error) => error
          }).pipe(
            Effect.map((result) => Buffer.from(String(result.rows[0].key), "hex"))
          )
        })
        const forgedKey = NodeCrypto.randomBytes(32)
        const channel = freshChannel()
        const events = yield* listener.subscribe([channel])
        yield* next(events, "Listening")
        yield* notifyAll(sender, channel, [livePayload(forgedKey, channel, schema, { id: 1, body: "1" })])
        expect(yield* events.take).toEqual({ _tag: "Wake", channel, redelivery: false })
        yield* notifyAll(sender, channel, [livePayload(forgedKey, channel, "other_schema", { id: 2, body: "2" })])
        yield* notifyAll(sender, channel, [wakePayload(schema, { redelivery: true })])
        expect(yield* events.take).toEqual({ _tag: "Wake", channel, redelivery: true })
        expect(yield* events.takeAll).toEqual([])
        const said = lines.filter((line) => line.includes("live-row key"))
        expect(said).toHaveLength(1)
        expect(said[0]).toMatch(/^INFO pgwatch: live rows arrive as wake-ups .*live_key\(\) does not exist \(42883\).*migrate/)
      })
    ))

  it.scopedLive("subscriptions made together are all LISTENed, and a channel given up and taken again is heard", () =>
    Effect.gen(function*() {
      const { listener, schema, sender } = yield* setup()
      yield* listener.subscribe([])
      const channels = Array.from({ length: 300 }, () => freshChannel())
      const leaving = yield* Scope.make()
      const subscriptions = yield* Effect.forEach(
        channels,
        (channel, i) => i % 2 === 0 ? Scope.extend(listener.subscribe([channel]), leaving) : listener.subscribe([channel]),
        { concurrency: "unbounded" }
      )
      const wakeAll = Effect.forEach(channels, (channel) => notifyAll(sender, channel, [wakePayload(schema)]), {
        concurrency: 4,
        discard: true
      })
      yield* wakeAll
      for (const [i, events] of subscriptions.entries()) {
        expect(yield* next(events, "Wake")).toMatchObject({ channel: channels[i] })
      }
      yield* Scope.close(leaving, Exit.void)
      const again = yield* listener.subscribe([channels[0]!])
      yield* next(again, "Listening")
      yield* wakeAll
      expect(yield* next(again, "Wake")).toMatchObject({ channel: channels[0] })
      expect(yield* next(subscriptions[1]!, "Wake")).toMatchObject({ channel: channels[1] })
    }))
})
