import { describe, expect, layer } from "@effect/vitest"
import { BigDecimal, Effect, Layer, Option, Queue, Schedule, Schema } from "effect"
import * as Admin from "../src/Admin.js"
import * as Consumer from "../src/Consumer.js"
import * as Json from "../src/Json.js"
import * as Notification from "../src/Notification.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

// The values that JSON.parse changed on the way (issue #8).
const ID_A = 1234567890123456789n
const ID_B = 1234567890123456790n
const AMOUNT = "12345678901234567.89"
const PAST_2_53 = 9007199254740993n

const exactText = (value: unknown) => BigDecimal.isBigDecimal(value) ? BigDecimal.format(value) : value

/** The stored jsonb of a log row, as PostgreSQL prints it. */
const storedText = (id: bigint) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch.PgWatch
    const [row] = yield* sql<{ payload: string }>`
      SELECT payload::text AS payload FROM ${sql(settings.schema)}.notification_log WHERE id = ${String(id)}::bigint`
    return row!.payload
  })

const rowsOn = (channel: string) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch.PgWatch
    const [row] = yield* sql<{ n: number }>`
      SELECT count(*)::int AS n FROM ${sql(settings.schema)}.notification_log WHERE channel = ${channel}`
    return row!.n
  })

/** The test's pgwatch, whose schema (and the table made in it) is dropped at the end. */
const NumbersLive = Layer.scopedDiscard(Effect.gen(function*() {
  const { settings, sql } = yield* PgWatch.PgWatch
  yield* Effect.addFinalizer(() => sql`DROP SCHEMA IF EXISTS ${sql(settings.schema)} CASCADE`.pipe(Effect.ignore))
})).pipe(Layer.provideMerge(watchLayer()))

describe("numbers arrive exactly as they were written", () => {
  layer(NumbersLive, { excludeTestServices: true })((it) => {
    it.effect("smart_notify from SQL: ids past 2^53 stay distinct bigints, a numeric stays exact", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const channel = freshChannel("sql_numbers")
        const Payload = Schema.Struct({ ids: Schema.Array(Json.Integer), amount: Json.Decimal, n: Json.Integer, small: Json.Integer })
        const raw = yield* recordingConsumer({ id: "numbers_raw", channels: [channel] })
        const typed = yield* recordingConsumer({ id: "numbers_typed", channels: [channel], schema: Payload })
        const stopRaw = yield* start(raw.consumer)
        const stopTyped = yield* start(typed.consumer)

        yield* sql`SELECT ${sql(settings.schema)}.smart_notify(${channel}, ${`{"ids": [${ID_A}, ${ID_B}], "amount": ${AMOUNT},
          "n": ${PAST_2_53}, "small": 42, "price": 19.99, "text": "${ID_A}"}`}::jsonb)`

        const [received] = yield* takeN(raw.received, 1)
        const payload = received!.payload as Record<string, unknown>
        expect(payload.ids).toEqual([ID_A, ID_B])
        expect(exactText(payload.amount)).toBe(AMOUNT)
        expect(payload).toMatchObject({ n: PAST_2_53, small: 42, price: 19.99, text: String(ID_A) })

        const [decoded] = yield* takeN(typed.received, 1)
        expect(decoded!.payload.ids).toEqual([ID_A, ID_B])
        expect(BigDecimal.format(decoded!.payload.amount)).toBe(AMOUNT)
        expect([decoded!.payload.n, decoded!.payload.small]).toEqual([PAST_2_53, 42n])
        yield* stopRaw
        yield* stopTyped
      }))

    it.effect("a table trigger on a bigint-id table: each row's exact id, and its numeric column", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const channel = freshChannel("accounts")
        const schema = sql(settings.schema)
        yield* sql`CREATE TABLE ${schema}.accounts (id bigint PRIMARY KEY, balance numeric NOT NULL)`
        yield* sql`SELECT ${sql(settings.schema)}.add_data_change_trigger(${`${settings.schema}.accounts`}::regclass, ${channel})`
        const { consumer, received } = yield* recordingConsumer({ id: "accounts", channels: [channel], schema: Notification.DataChange })
        const stop = yield* start(consumer)

        yield* sql`INSERT INTO ${schema}.accounts (id, balance) VALUES (${String(ID_A)}::bigint, ${AMOUNT}::numeric),
                                                                  (${String(ID_B)}::bigint, 1.5)`
        yield* sql`DELETE FROM ${schema}.accounts WHERE id = ${String(ID_A)}::bigint`
        const [first, second, removed] = yield* takeN(received, 3)

        expect([first!.payload.recordId, second!.payload.recordId, removed!.payload.recordId]).toEqual([
          Option.some(ID_A),
          Option.some(ID_B),
          Option.some(ID_A)
        ])
        expect(first!.payload.id).toBe(ID_A)
        const row = Option.getOrThrow(first!.payload.newData)
        expect(row.id).toBe(ID_A)
        expect(exactText(row.balance)).toBe(AMOUNT)
        expect(Option.getOrThrow(second!.payload.newData)).toEqual({ id: ID_B, balance: 1.5 })
        expect(exactText(Option.getOrThrow(removed!.payload.oldData).balance)).toBe(AMOUNT)
        yield* stop
      }))

    it.effect("PgWatch.notify writes bigints and BigDecimals exactly; they come back the same", () =>
      Effect.gen(function*() {
        const channel = freshChannel("notify_numbers")
        const { consumer, received } = yield* recordingConsumer({ id: "notify_numbers", channels: [channel] })
        const stop = yield* start(consumer)
        const amount = BigDecimal.unsafeFromString(AMOUNT)

        const id = yield* PgWatch.notify(channel, { id: ID_A, amount, n: PAST_2_53 })
        expect(yield* storedText(id)).toBe(`{"n": ${PAST_2_53}, "id": ${ID_A}, "amount": ${AMOUNT}}`)
        const Payload = Schema.Struct({ id: Json.Integer, amount: Json.Decimal })
        const [typedId] = yield* PgWatch.notifyMany(channel, [{ id: ID_B, amount }], Payload)
        expect(yield* storedText(typedId!)).toBe(`{"id": ${ID_B}, "amount": ${AMOUNT}}`)

        const [one, two] = yield* takeN(received, 2)
        const first = one!.payload as Record<string, unknown>
        expect([first.id, exactText(first.amount), first.n]).toEqual([ID_A, AMOUNT, PAST_2_53])
        expect((two!.payload as Record<string, unknown>).id).toBe(ID_B)
        yield* stop
      }))

    it.effect("PgWatch.notify refuses a payload with no faithful JSON form, naming the value, and stores nothing", () =>
      Effect.gen(function*() {
        const channel = freshChannel("refused")
        const cyclic: Record<string, unknown> = { name: "loop" }
        cyclic.self = cyclic
        const refused: Array<[unknown, string]> = [
          [{ amount: Number.NaN }, "payload.amount is NaN"],
          [{ amount: Number.POSITIVE_INFINITY }, "payload.amount is Infinity"],
          [{ amount: Number.NEGATIVE_INFINITY }, "payload.amount is -Infinity"],
          [{ amount: -0 }, "payload.amount is -0"],
          [{ tags: new Map([["a", 1]]) }, "payload.tags is a Map"],
          [{ tags: new Set(["a"]) }, "payload.tags is a Set"],
          [{ run: () => 1 }, "payload.run is a function"],
          [undefined, "payload is undefined"],
          [{ at: new (class Clock {})() }, "payload.at is a Clock with no toJSON method"],
          [cyclic, "payload.self refers back to an object that contains it"],
          [{ note: "a\u0000b" }, "payload.note contains a NUL character"]
        ]
        for (const [payload, message] of refused) {
          const error = yield* Effect.flip(PgWatch.notify(channel, payload))
          expect(error).toMatchObject({ _tag: "PgWatchError", reason: "InvalidPayload" })
          expect(error.message).toContain(message)
        }
        const many = yield* Effect.flip(PgWatch.notifyMany(channel, [{ ok: 1 }, { ok: 2 }, { amount: Number.NaN }]))
        expect(many.message).toBe("payloads[2] has no faithful JSON form: payloads[2].amount is NaN")
        expect(yield* rowsOn(channel)).toBe(0)
      }))

    it.effect("redeliveries and dead letters keep the numbers exact too", () =>
      Effect.gen(function*() {
        const channel = freshChannel("redelivered")
        const failed = yield* Queue.unbounded<bigint>()
        const { consumer, received } = yield* recordingConsumer({
          id: "redelivered",
          channels: [channel],
          handle: (n) =>
            (n.payload as { fail?: boolean }).fail === true
              ? Effect.zipRight(Queue.offer(failed, n.id), Effect.fail(new Consumer.Permanent({ message: "refused on purpose" })))
              : Effect.void
        })
        const stop = yield* start(consumer)
        const good = yield* PgWatch.notify(channel, { id: ID_A })
        const bad = yield* PgWatch.notify(channel, { id: ID_B, fail: true })
        expect((yield* takeN(received, 1))[0]!.id).toBe(good)
        expect(yield* Queue.take(failed)).toBe(bad)

        // The failure is recorded after the handler fails: wait for the row.
        const dead = yield* Admin.deadLetters({ consumerId: "redelivered" }).pipe(
          Effect.filterOrFail((rows) => rows.length === 1),
          Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") })
        )
        expect(dead[0]!.payload).toEqual({ id: ID_B, fail: true })

        yield* Admin.replay({ consumerId: "redelivered", logIds: [good] })
        const [again] = yield* takeN(received, 1)
        expect(again).toMatchObject({ id: good, isReplay: true, payload: { id: ID_A } })
        yield* stop
      }))
  })
})
