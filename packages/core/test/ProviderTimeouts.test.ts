import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Logger, Redacted } from "effect"
import * as Migrator from "../src/Migrator.js"
import * as PgWatch from "../src/PgWatch.js"
import { databaseUrl, freshChannel, freshSchema, query, rawClient, recordingConsumer, start, takeN, testOptions } from "./utils.js"

/**
 * The test database as a hosted provider sets it up: sessions idle for 2 s are ended by the
 * server (57P05) and statements are cancelled after 1 s, for every connection of the URL.
 */
const providerUrl = (() => {
  const url = new URL(databaseUrl)
  url.searchParams.set("options", "-c idle_session_timeout=2s -c statement_timeout=1s")
  return url.toString()
})()

describe("provider-style time-outs", () => {
  it.live("delivery loses nothing, restarts no consumer and keeps its listen connection", () =>
    Effect.gen(function*() {
      const schema = freshSchema()
      yield* Migrator.migrate({ schema }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })))
      yield* Effect.addFinalizer(() =>
        Effect.scoped(Effect.flatMap(rawClient, (client) => query(client, `DROP SCHEMA "${schema}" CASCADE`)))
      )
      const lines: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          lines.push(`${logLevel.label} ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}`)
        })
      )
      // Polls as long as a session may idle, so a poll often meets a pooled connection the
      // server is ending; health checks rarer than the idle limit, as by default.
      const layer = PgWatch.layer({ ...testOptions, schema, pollInterval: "2 seconds", healthCheckInterval: "5 seconds" }).pipe(
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(providerUrl), maxConnections: 4 }))
      )
      yield* Effect.gen(function*() {
        const channel = freshChannel()
        const backlog = yield* PgWatch.notifyMany(channel, Array.from({ length: 3000 }, (_, n) => n))
        const { consumer, received } = yield* recordingConsumer({ id: "hosted", channels: [channel] })
        const stop = yield* start(consumer)
        const played = yield* takeN(received, backlog.length, "30 seconds")
        expect(played.map((n) => n.id)).toEqual(backlog)
        // Idle spells longer than the server allows, each followed by a notification.
        const later: Array<bigint> = []
        for (let round = 0; round < 5; round++) {
          // Waiting is the point here: the pool's connections must sit idle past the limit.
          yield* Effect.sleep("2500 millis")
          later.push(yield* PgWatch.notify(channel, `after idling ${round}`))
          expect((yield* takeN(received, 1, "10 seconds"))[0]!.id).toBe(later.at(-1))
        }
        yield* stop
        expect(lines.filter((line) => /restarting|listen connection lost/.test(line))).toEqual([])
      }).pipe(Effect.provide(layer), Effect.provide(logger))
    }).pipe(Effect.scoped), 90_000)

  it.live("a consumer that restarts on a database error logs one line with PostgreSQL's message and code", () =>
    Effect.gen(function*() {
      const schema = freshSchema()
      yield* Migrator.migrate({ schema }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })))
      const admin = yield* rawClient
      yield* Effect.addFinalizer(() => query(admin, `DROP SCHEMA "${schema}" CASCADE`))
      const lines: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          lines.push(`${logLevel.label} ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}`)
        })
      )
      const layer = PgWatch.layer({ ...testOptions, schema }).pipe(
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 4 }))
      )
      yield* Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "broken_table", channels: [channel] })
        const stop = yield* start(consumer)
        yield* PgWatch.notify(channel, "first")
        yield* takeN(received, 1)
        // The consumer's next poll reads a table that is gone.
        yield* query(admin, `ALTER TABLE "${schema}".redelivery RENAME TO redelivery_gone`)
        for (let i = 0; i < 500 && !lines.some((line) => line.includes("cannot run")); i++) yield* Effect.sleep("20 millis")
        yield* query(admin, `ALTER TABLE "${schema}".redelivery_gone RENAME TO redelivery`)
        // A missing table is no passing fault: one line says so, with the fix, and it retries quietly.
        const restart = lines.find((line) => line.includes("cannot run"))
        expect(restart).toMatch(
          new RegExp(`^ERROR pgwatch: consumer broken_table cannot run: relation "${schema}.redelivery" does not exist \\(SQLSTATE 42P01\\); .*pgwatch migrate.*$`)
        )
        // It restarts from its saved position (at least once: "first" may come again), and goes on.
        yield* PgWatch.notify(channel, "after")
        while ((yield* takeN(received, 1, "20 seconds"))[0]!.payload !== "after");
        yield* stop
      }).pipe(Effect.provide(layer), Effect.provide(logger))
    }).pipe(Effect.scoped), 60_000)
})
