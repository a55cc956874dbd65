import { describe, expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Notification from "../src/Notification.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

describe("table triggers", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("INSERT, UPDATE and DELETE become notifications with old and new rows and session metadata", () =>
      Effect.gen(function*() {
        const { sql, settings } = yield* PgWatch.PgWatch
        const channel = freshChannel("orders")
        const table = `orders_${channel.slice(-8)}`
        yield* sql`CREATE TABLE ${sql(table)} (id serial PRIMARY KEY, status text)`
        const [{ trigger }] = yield* sql<{ trigger: string }>`
          SELECT ${sql(settings.schema)}.add_data_change_trigger(${table}::regclass, ${channel}) AS trigger`
        expect(trigger).toBe(`pgwatch_${channel}`)
        const { consumer, received } = yield* recordingConsumer({ id: "orders", channels: [channel], schema: Notification.DataChange })
        const stop = yield* start(consumer)

        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`SELECT set_config('app.user_id', '42', true), set_config('app.session_id', 'abc', true)`
          yield* sql`INSERT INTO ${sql(table)} (status) VALUES ('new')`
        }))
        yield* sql`UPDATE ${sql(table)} SET status = 'paid'`
        yield* sql`DELETE FROM ${sql(table)}`
        const [insert, update, remove] = yield* takeN(received, 3)

        expect(insert!.payload).toMatchObject({ table, action: "INSERT", id: 1, old_data: null, new_data: { id: 1, status: "new" } })
        expect(insert!.payload.metadata).toMatchObject({ user_id: "42", session_id: "abc" })
        expect(insert!.payload.isInsert).toBe(true)
        expect(update!.payload.isUpdate).toBe(true)
        expect(update!.payload.oldData).toEqual(Option.some({ id: 1, status: "new" }))
        expect(update!.payload.newData).toEqual(Option.some({ id: 1, status: "paid" }))
        expect(update!.payload.metadata.user_id).toBeNull()
        expect(remove!.payload).toMatchObject({ action: "DELETE", new_data: null, old_data: { id: 1, status: "paid" } })
        expect(remove!.payload.recordId).toEqual(Option.some(1n))
        yield* stop
      }))

    it.effect("tables without an id column, the default channel, odd table names, listing and removal", () =>
      Effect.gen(function*() {
        const { sql, settings } = yield* PgWatch.PgWatch
        const schema = sql(settings.schema)
        const table = `Odd "Table" ${Math.random().toString(36).slice(2, 8)}`
        yield* sql`CREATE TABLE ${sql(table)} (code text)`
        const qualified = `"${table.replaceAll("\"", "\"\"")}"`
        yield* sql`SELECT ${schema}.add_data_change_trigger(${qualified}::regclass)`
        const listed = yield* sql<{ table_name: string; channel: string }>`
          SELECT table_name, channel FROM ${schema}.data_change_triggers WHERE table_name = ${qualified}`
        expect(listed).toEqual([{ table_name: qualified, channel: "data_change" }])

        yield* sql`INSERT INTO ${sql(table)} (code) VALUES ('x')`
        const [row] = yield* sql<{ payload: Record<string, unknown> }>`
          SELECT payload FROM ${schema}.notification_log
           WHERE channel = 'data_change' AND payload ->> 'table' = ${table}`
        expect(row!.payload).toMatchObject({ table, action: "INSERT", id: null, new_data: { code: "x" } })

        const [{ removed }] = yield* sql<{ removed: boolean }>`
          SELECT ${schema}.remove_data_change_trigger(${qualified}::regclass) AS removed`
        expect(removed).toBe(true)
        const [{ again }] = yield* sql<{ again: boolean }>`
          SELECT ${schema}.remove_data_change_trigger(${qualified}::regclass) AS again`
        expect(again).toBe(false)
      }))

    it.effect("a trigger channel that is not a valid name is refused", () =>
      Effect.gen(function*() {
        const { sql, settings } = yield* PgWatch.PgWatch
        yield* sql`CREATE TABLE IF NOT EXISTS bad_channel_target (id int)`
        const error = yield* Effect.flip(
          sql`SELECT ${sql(settings.schema)}.add_data_change_trigger('bad_channel_target'::regclass, 'x; DROP TABLE y')`
        )
        expect(String(error.cause)).toContain("invalid channel name")
      }))
  })
})
