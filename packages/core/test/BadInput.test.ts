import { describe, expect, layer } from "@effect/vitest"
import { Effect, Logger, Schema } from "effect"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, nothingMore, query, rawClient, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

describe("bad input", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.scoped("NOTIFYs that are not ours, not JSON, or forge a log id never reach the handler", () =>
      Effect.gen(function*() {
        const { settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "forged", channels: [channel] })
        const stop = yield* start(consumer)
        const raw = yield* rawClient
        const forge = (payload: string) => query(raw, "SELECT pg_notify($1, $2)", [channel, payload])
        yield* forge("not json {")
        yield* forge(JSON.stringify({ notification_log_id: 999999, timestamp: "2024-01-01", data: { evil: true } }))
        yield* forge(JSON.stringify({ pgwatch: 1, schema: "some_other_schema" }))
        // Our exact wake-up format, but no row behind it: a spurious wake, nothing to deliver.
        yield* forge(JSON.stringify({ pgwatch: 1, schema: settings.schema }))
        expect(yield* nothingMore(received)).toHaveLength(0)
        // The consumer is still alive and well.
        const id = yield* PgWatch.notify(channel, "real")
        expect((yield* takeN(received, 1))[0]!.id).toBe(id)
        yield* stop
      }))

    it.scoped("a payload that fails the consumer's schema is dead-lettered with the reason, and the rest flow", () => {
      const warnings: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel.label === "WARN") warnings.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
        })
      )
      return Effect.gen(function*() {
        const { sql, settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({
          id: "typed",
          channels: [channel],
          schema: Schema.Struct({ orderId: Schema.Number })
        })
        const stop = yield* start(consumer)
        const bad = yield* PgWatch.notify(channel, { orderId: "not a number" })
        const good = yield* PgWatch.notify(channel, { orderId: 7 })
        const [got] = yield* takeN(received, 1)
        expect(got).toMatchObject({ id: good, payload: { orderId: 7 } })
        yield* stop
        const dead = yield* sql<{ log_id: string; reason: string; error: string }>`
          SELECT log_id::text, reason, error FROM ${sql(settings.schema)}.dead_letter WHERE consumer_id = 'typed'`
        expect(dead).toHaveLength(1)
        expect(dead[0]).toMatchObject({ log_id: String(bad), reason: "invalid-payload" })
        expect(dead[0]!.error).toContain("orderId")
        // The log line says it in one line (a log collector splits lines into records).
        const line = warnings.find((w) => w.includes(`dead-lettered notification ${bad} (invalid-payload)`))
        expect(line).toContain(`["orderId"] └─ Expected number, actual "not a number"`)
        expect(line).not.toContain("\n")
      }).pipe(Effect.provide(logger))
    })

    it.scoped("the dead-letter warning is one log line, even for a parse error's tree", () => {
      const lines: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ message }) => {
          lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
        })
      )
      return Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({
          id: "typed_escaped",
          channels: [channel],
          schema: Schema.Struct({ orderId: Schema.Number })
        })
        const stop = yield* start(consumer)
        yield* PgWatch.notify(channel, { orderId: "1\nERROR forged line \u001b[31m" })
        const good = yield* PgWatch.notify(channel, { orderId: 7 })
        expect((yield* takeN(received, 1))[0]!.id).toBe(good)
        yield* stop
        const warning = lines.find((line) => line.includes("typed_escaped dead-lettered"))
        expect(warning).toContain("ERROR forged line \\u001b[31m")
        expect(warning).not.toMatch(/[\u0000-\u001f]/)
      }).pipe(Effect.provide(logger))
    })

    it.scoped("a row deleted before it was read is simply not delivered; nothing breaks", () =>
      Effect.gen(function*() {
        const { sql, settings } = yield* PgWatch.PgWatch
        const channel = freshChannel()
        const gone = yield* PgWatch.notify(channel, "gone")
        const kept = yield* PgWatch.notify(channel, "kept")
        yield* sql`DELETE FROM ${sql(settings.schema)}.notification_log WHERE id = ${String(gone)}::bigint`
        const { consumer, received } = yield* recordingConsumer({ id: "deleted", channels: [channel] })
        const stop = yield* start(consumer)
        expect((yield* takeN(received, 1))[0]!.id).toBe(kept)
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
      }))

    it.effect("notify rejects bad channel names and payloads with a clear error, storing nothing", () =>
      Effect.gen(function*() {
        const badChannel = yield* Effect.flip(PgWatch.notify("drop table; --", {}))
        expect(badChannel).toMatchObject({ _tag: "PgWatchError", reason: "InvalidChannel" })
        expect(badChannel.message).toContain("invalid channel name")
        const tooLong = yield* Effect.flip(PgWatch.notify("c".repeat(64), {}))
        expect(tooLong).toMatchObject({ reason: "InvalidChannel" })
        const notJson = yield* Effect.flip(PgWatch.notify(freshChannel(), { n: Number.NaN }))
        expect(notJson).toMatchObject({ reason: "InvalidPayload" })
        const undef = yield* Effect.flip(PgWatch.notify(freshChannel(), undefined))
        expect(undef).toMatchObject({ reason: "InvalidPayload" })
        const schemaFail = yield* Effect.flip(
          PgWatch.notify(freshChannel(), { at: "yesterday" } as never, Schema.Struct({ at: Schema.DateFromSelf }))
        )
        expect(schemaFail).toMatchObject({ reason: "InvalidPayload" })
      }))

    it.scoped("the log table itself refuses a bad channel from SQL producers", () =>
      Effect.gen(function*() {
        const { settings } = yield* PgWatch.PgWatch
        const raw = yield* rawClient
        const error = yield* Effect.flip(Effect.tryPromise(() =>
          raw.query(`SELECT "${settings.schema}".smart_notify('bad channel', '{}')`)
        ))
        expect(String(error.cause)).toContain("check constraint")
      }))
  })
})
