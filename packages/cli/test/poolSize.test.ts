import { describe, expect, it } from "@effect/vitest"
import * as PgWatch from "@pgwatch/core/PgWatch"
import { ConfigProvider, Effect, Option } from "effect"
import * as Database from "../src/Database.js"

/** The pool size a command resolves, with this config file `database` and environment. */
const poolSize = (database: { readonly poolSize?: number }, env: Record<string, string>) =>
  Database.resolve({
    databaseUrl: Option.none(),
    schema: Option.none(),
    config: Option.some({ path: "/app/pgwatch.config.ts", config: { apps: {}, database: { url: "postgres://h/db", ...database } } })
  }).pipe(
    Effect.map((target) => target.client.maxConnections),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

describe("the pool size", () => {
  it.effect("comes from the config file's database.poolSize, else PGWATCH_POOL_SIZE, else the default", () =>
    Effect.gen(function*() {
      expect(yield* poolSize({ poolSize: 3 }, { PGWATCH_POOL_SIZE: "7" })).toBe(3)
      expect(yield* poolSize({}, { PGWATCH_POOL_SIZE: "7" })).toBe(7)
      expect(yield* poolSize({}, {})).toBe(PgWatch.defaultPoolSize)
      const invalid = yield* Effect.flip(poolSize({}, { PGWATCH_POOL_SIZE: "0" }))
      expect(String(invalid)).toContain("PGWATCH_POOL_SIZE must be a positive whole number")
    }))
})
