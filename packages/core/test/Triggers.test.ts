import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as PgWatch from "../src/PgWatch.js"
import * as Triggers from "../src/Triggers.js"
import { watchLayer } from "./utils.js"

describe("Triggers", () => {
  layer(watchLayer(), { excludeTestServices: true })("add, list, remove", (it) => {
    it.effect("adds a notifying trigger per channel, lists and removes it, with names as values", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const table = `${settings.schema}.orders`
        yield* sql`CREATE TABLE ${sql(settings.schema)}.orders (id serial PRIMARY KEY, item text)`
        yield* sql`CREATE TABLE ${sql(settings.schema)}."Odd Name" (item text)`

        expect(yield* Triggers.add(table)).toEqual({ table, trigger: "pgwatch_data_change", channel: "data_change" })
        expect(yield* Triggers.add(table, { channel: "orders" })).toMatchObject({ trigger: "pgwatch_orders" })
        const odd = yield* Triggers.add(`${settings.schema}."Odd Name"`, { channel: "odd" })
        expect(odd.table).toBe(`${settings.schema}."Odd Name"`)

        expect(yield* Triggers.list({ table })).toEqual([
          { table, trigger: "pgwatch_data_change", channel: "data_change" },
          { table, trigger: "pgwatch_orders", channel: "orders" }
        ])
        expect(yield* Triggers.list()).toHaveLength(3)

        yield* sql`INSERT INTO ${sql(settings.schema)}.orders (item) VALUES ('tea')`
        const logged = yield* sql<{ channel: string; table: string }>`
          SELECT channel, payload->>'table' AS table FROM ${sql(settings.schema)}.notification_log ORDER BY channel`
        expect(logged).toEqual([{ channel: "data_change", table: "orders" }, { channel: "orders", table: "orders" }])

        expect(yield* Triggers.remove(table, { channel: "orders" })).toBe(true)
        expect(yield* Triggers.remove(table, { channel: "orders" })).toBe(false)
        expect(yield* Triggers.list({ table })).toHaveLength(1)

        const missing = yield* Effect.flip(Triggers.add(`${settings.schema}.nope`))
        expect(missing._tag === "AdminError" && missing.reason).toBe("UnknownTable")
        const injected = yield* Effect.flip(Triggers.add(`${table}; DROP TABLE ${table}`))
        expect(injected._tag).toBe("AdminError")
        const badChannel = yield* Effect.flip(Triggers.add(table, { channel: "no-dashes" }))
        expect(badChannel._tag === "PgWatchError" && badChannel.reason).toBe("InvalidChannel")
        const longChannel = yield* Effect.flip(Triggers.add(table, { channel: "c".repeat(56) }))
        expect(longChannel.message).toContain("at most 55")
        const longRemoval = yield* Effect.flip(Triggers.remove(table, { channel: "c".repeat(56) }))
        expect(longRemoval.message).toContain("at most 55")
      }))

    it.effect("the SQL function refuses a channel whose trigger name PostgreSQL would truncate to another's", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const table = `${settings.schema}.long_names`
        yield* sql`CREATE TABLE ${sql(settings.schema)}.long_names (id int PRIMARY KEY)`
        const longest = "c".repeat(55)
        yield* Triggers.add(table, { channel: longest })
        // pgwatch_ + 56 characters is 64 bytes, truncated to the trigger of the 55-character channel.
        const refused = yield* Effect.flip(
          sql`SELECT ${sql(settings.schema)}.remove_data_change_trigger(${table}::regclass, ${`${longest}x`})`
        )
        expect(String((refused.cause as Error).message)).toContain("invalid channel name")
        expect((yield* Triggers.list({ table })).map((t) => t.channel)).toEqual([longest])
      }))
  })
})
