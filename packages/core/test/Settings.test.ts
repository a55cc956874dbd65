import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Redacted } from "effect"
import * as PgWatch from "../src/PgWatch.js"

describe("settings", () => {
  it.effect("come from the environment, with defaults for what is not set", () =>
    Effect.gen(function*() {
      const options = yield* PgWatch.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
          ["PGWATCH_SCHEMA", "events"],
          ["PGWATCH_PAGE_SIZE", "250"],
          ["PGWATCH_POLL_INTERVAL", "2 seconds"],
          ["PGWATCH_MAX_RETRIES", "3"]
        ])))
      )
      const settings = yield* PgWatch.resolve(options)
      expect(settings.schema).toBe("events")
      expect(settings.pageSize).toBe(250)
      expect(Duration.toMillis(settings.pollInterval)).toBe(2000)
      expect(settings.retry.maxRetries).toBe(3)
      expect(Duration.toMillis(settings.retry.baseDelay)).toBe(200)
      expect(Duration.toMillis(settings.healthCheckInterval)).toBe(10_000)
    }))

  it.effect("the listen connection's URL and fallback poll come from the environment; the URL stays redacted", () =>
    Effect.gen(function*() {
      const options = yield* PgWatch.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
          ["PGWATCH_LISTEN_URL", "postgres://app:s3cret@db-direct:5432/app"],
          ["PGWATCH_FALLBACK_POLL_INTERVAL", "100 millis"]
        ])))
      )
      expect(options.listenUrl && Redacted.value(options.listenUrl)).toBe("postgres://app:s3cret@db-direct:5432/app")
      expect(String(options.listenUrl)).not.toContain("s3cret")
      expect(Duration.toMillis((yield* PgWatch.resolve(options)).fallbackPollInterval)).toBe(100)
      const defaults = yield* PgWatch.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      expect(defaults.listenUrl).toBeUndefined()
      expect(Duration.toMillis((yield* PgWatch.resolve(defaults)).fallbackPollInterval)).toBe(250)
    }))

  it.effect("reject a bad page size, retry count or schema name with a clear message", () =>
    Effect.gen(function*() {
      expect(yield* Effect.flip(PgWatch.resolve({ pageSize: 0 }))).toMatchObject({ reason: "Config" })
      expect(yield* Effect.flip(PgWatch.resolve({ retry: { maxRetries: -1 } }))).toMatchObject({ reason: "Config" })
      const schema = yield* Effect.flip(PgWatch.resolve({ schema: "Bad-Name" }))
      expect(schema.message).toContain("invalid schema name")
      const config = yield* Effect.flip(PgWatch.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PGWATCH_PAGE_SIZE", "lots"]])))
      ))
      expect(String(config)).toContain("PGWATCH_PAGE_SIZE")
    }))
})
