import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Logger, Option } from "effect"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import * as Roles from "../src/Roles.js"
import { next } from "./livePayload.js"
import { loginRole, schemaWithRoles } from "./roleUtils.js"
import { freshChannel, PgLive, testOptions } from "./utils.js"

// End to end with sql/0009: the producers' live rows, the key read through the pool.

/** A migrated schema (dropped with its group roles when the scope closes) and the service as its owner. */
const ownedSchema = Effect.gen(function*() {
  const schema = yield* schemaWithRoles
  yield* Migrator.migrate({ schema })
  return { schema, owner: PgWatch.layer({ schema, ...testOptions }).pipe(Layer.provideMerge(PgLive)) }
})

/** Subscribes through the service's listener and registers as waiting, so producers send live rows. */
const waitOn = (channel: string) =>
  Effect.gen(function*() {
    const { listener, settings, sql } = yield* PgWatch.PgWatch
    const events = yield* listener.subscribe([channel])
    const { pid } = yield* next(events, "Listening")
    yield* sql`INSERT INTO ${sql(settings.schema)}.waiting (channel, consumer_id, backend_pid) VALUES (${channel}, 'listener_test', ${pid})`
    return events
  })

describe("live rows from the producers", () => {
  it.live("smart_notify's rows reach the listener verified, with their payloads (or their ids when too big)", () =>
    Effect.gen(function*() {
      const { owner } = yield* ownedSchema
      yield* Effect.gen(function*() {
        const channel = freshChannel()
        const events = yield* waitOn(channel)
        const id = yield* PgWatch.notify(channel, { order: 1, lines: [{ sku: "a" }] })
        const row = yield* next(events, "Row")
        expect(row).toMatchObject({ channel, id, payload: Option.some({ order: 1, lines: [{ sku: "a" }] }) })
        expect(Object.isFrozen(Option.getOrThrow(row.payload))).toBe(true)
        const big = yield* PgWatch.notify(channel, "x".repeat(10_000))
        expect(yield* next(events, "Row")).toMatchObject({ id: big, payload: Option.none() })
        // Past the transaction's budget of row NOTIFYs: "read xid".
        const many = yield* PgWatch.notifyMany(channel, Array.from({ length: 150 }, (_, i) => i))
        const rows = yield* Effect.forEach(many.slice(0, 100), () => next(events, "Row"))
        expect(rows.map((row) => row.id)).toEqual(many.slice(0, 100))
        const readXid = yield* next(events, "ReadXid")
        expect(readXid).toEqual({ _tag: "ReadXid", channel, xid: rows[0]!.xid })
      }).pipe(Effect.provide(owner))
    }).pipe(Effect.scoped, Effect.provide(PgLive)))

  it.live("a role that may not read the key gets wake-ups instead, and one log line naming the grant", () =>
    Effect.gen(function*() {
      const { owner, schema } = yield* ownedSchema
      const app = yield* loginRole("nokey")
      yield* Roles.grant({ role: app.name, kind: "consumer" }).pipe(Effect.provide(owner))
      // What a grant from before live rows gives.
      const sql = yield* PgClient.PgClient
      yield* sql.unsafe(`REVOKE EXECUTE ON FUNCTION "${schema}".live_key() FROM "${Roles.groupRole(schema, "consumer")}"`)
      const lines: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ message }) => {
          lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
        })
      )
      const channel = freshChannel()
      const service = yield* Layer.build(app.watch(schema))
      const events = yield* waitOn(channel).pipe(Effect.provide(service), Effect.provide(logger))
      yield* PgWatch.notify(channel, { n: 1 }).pipe(Effect.provide(owner))
      expect(yield* events.take).toEqual({ _tag: "Wake", channel, redelivery: false })
      expect(lines.filter((line) => line.includes("live-row key"))).toEqual([
        expect.stringMatching(/permission denied .*\(42501\).*pgwatch grant <role> --as consumer/)
      ])
    }).pipe(Effect.scoped, Effect.provide(PgLive)))
})
