import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Logger, Option, Redacted, Schedule } from "effect"
import * as Admin from "../src/Admin.js"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import { pgbouncerBinary, skipReason, startPgBouncer } from "../../../test-support/pgbouncer.js"
import { databaseUrl, freshChannel, freshSchema, query, rawClient, recordingConsumer, start, takeN, testOptions } from "./utils.js"

if (pgbouncerBinary === undefined) console.warn(skipReason)

/** Log lines, kept for the test to read. */
const capturedLogs = () => {
  const lines: Array<string> = []
  const layer = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel.label} ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}`)
    })
  )
  return { lines, layer }
}

/** Far longer than any test waits: a notification that arrives came by wake-up or fallback poll. */
const SLOW_POLL = { ...testOptions, pollInterval: "30 seconds", healthCheckTimeout: "3 seconds" } satisfies PgWatch.Options

/** A migrated schema of its own (migrated directly: the pooler is what is under test), dropped afterwards. */
const migratedSchema = Effect.acquireRelease(
  Effect.gen(function*() {
    const schema = freshSchema()
    yield* Migrator.migrate({ schema }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })))
    return schema
  }),
  (schema) => Effect.scoped(Effect.flatMap(rawClient, (client) => query(client, `DROP SCHEMA "${schema}" CASCADE`)))
)

/** The service with its pool through `poolUrl`. */
const watchThrough = (poolUrl: string, options: PgWatch.Options) =>
  PgWatch.layer({ ...SLOW_POLL, ...options }).pipe(
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(poolUrl), maxConnections: 4 }))
  )

const waitingPid = (consumerId: string) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch.PgWatch
    const rows = yield* sql<{ pid: number }>`
      SELECT backend_pid AS pid FROM ${sql(settings.schema)}.waiting WHERE consumer_id = ${consumerId} LIMIT 1`
    return Option.fromNullable(rows[0]?.pid)
  })

/** What `pgwatch status` shows as DELIVERY. */
const deliveryMode = (consumerId: string) =>
  Effect.map(Admin.status({ consumerIds: [consumerId] }), (rows) => rows[0]?.deliveryMode ?? null)

/** Waits (polling the table, not sleeping blindly) until `effect` yields what `ok` accepts. */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, ok: (a: A) => boolean) =>
  effect.pipe(
    Effect.filterOrFail(ok, () => "not yet"),
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 500 }),
    Effect.orDie
  )

describe.skipIf(pgbouncerBinary === undefined)("behind PgBouncer", () => {
  it.live("session mode: live wake-ups, registered under the server's pid, which another process's start keeps", () =>
    Effect.gen(function*() {
      const schema = yield* migratedSchema
      const bouncer = yield* startPgBouncer(databaseUrl, "session")
      yield* Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "session", channels: [channel] })
        const stop = yield* start(consumer)
        const pid = yield* eventually(waitingPid("session"), Option.isSome).pipe(Effect.map(Option.getOrThrow))
        // The pid the server reports, not PgBouncer's made-up one.
        const admin = yield* rawClient
        const seen = yield* query(admin, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [pid])
        expect(seen.rows[0].n).toBe(1)

        // Another process starting the service (pgwatch status, a producer) cleans up stale
        // registrations: this one is alive and must stay.
        yield* Effect.scoped(Layer.build(watchThrough(bouncer.url, { schema })))
        expect(yield* waitingPid("session")).toEqual(Option.some(pid))

        const id = yield* PgWatch.notify(channel, "through session pooling")
        const [got] = yield* takeN(received, 1, "5 seconds")
        expect(got).toMatchObject({ id, isReplay: false })
        expect(yield* deliveryMode("session")).toBe("wake-ups")
        yield* stop
      }).pipe(Effect.provide(watchThrough(bouncer.url, { schema })))
    }).pipe(Effect.scoped), 60_000)

  it.live("transaction mode with listenUrl direct: live wake-ups", () =>
    Effect.gen(function*() {
      const schema = yield* migratedSchema
      const bouncer = yield* startPgBouncer(databaseUrl, "transaction")
      const logs = capturedLogs()
      yield* Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "tx_direct", channels: [channel] })
        const stop = yield* start(consumer)
        yield* eventually(waitingPid("tx_direct"), Option.isSome)
        for (const n of [1, 2, 3]) {
          const id = yield* PgWatch.notify(channel, n)
          const [got] = yield* takeN(received, 1, "5 seconds")
          expect(got).toMatchObject({ id, isReplay: false })
        }
        expect(yield* deliveryMode("tx_direct")).toBe("wake-ups")
        expect(logs.lines.filter((line) => line.startsWith("WARN"))).toEqual([])
        yield* stop
      }).pipe(Effect.provide(watchThrough(bouncer.url, { schema, listenUrl: Redacted.make(databaseUrl) })), Effect.provide(logs.layer))
    }).pipe(Effect.scoped), 60_000)

  it.live("transaction mode without listenUrl: one warning naming the fix, status says polling, delivery by fast polls", () =>
    Effect.gen(function*() {
      const schema = yield* migratedSchema
      const bouncer = yield* startPgBouncer(databaseUrl, "transaction")
      const logs = capturedLogs()
      yield* Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "tx_pooled", channels: [channel] })
        const stop = yield* start(consumer)
        yield* eventually(deliveryMode("tx_pooled"), (mode) => mode === "polling")
        for (const n of [1, 2, 3]) {
          const id = yield* PgWatch.notify(channel, n)
          const [got] = yield* takeN(received, 1, "5 seconds")
          expect(got!.id).toBe(id)
        }
        // Nobody is registered as waiting, so producers do not NOTIFY for nobody.
        expect(yield* waitingPid("tx_pooled")).toEqual(Option.none())
        const warnings = logs.lines.filter((line) => line.startsWith("WARN"))
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toContain("transaction mode")
        expect(warnings[0]).toContain("listenUrl")
        yield* stop
      }).pipe(Effect.provide(watchThrough(bouncer.url, { schema })), Effect.provide(logs.layer))
    }).pipe(Effect.scoped), 60_000)
})

