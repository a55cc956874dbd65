import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as PgWatch from "../src/PgWatch.js"
import * as Retention from "../src/Retention.js"
import { freshChannel, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

const age = (ids: ReadonlyArray<bigint>, days: number) =>
  Effect.gen(function*() {
    const { sql, settings } = yield* PgWatch.PgWatch
    yield* sql`UPDATE ${sql(settings.schema)}.notification_log
               SET created_at = now() - make_interval(days => ${days})
               WHERE id = ANY(${ids.map(String)}::bigint[])`
  })

const remaining = (ids: ReadonlyArray<bigint>) =>
  Effect.gen(function*() {
    const { sql, settings } = yield* PgWatch.PgWatch
    const rows = yield* sql<{ id: string }>`SELECT id::text FROM ${sql(settings.schema)}.notification_log
                                            WHERE id = ANY(${ids.map(String)}::bigint[]) ORDER BY id`
    return rows.map((r) => BigInt(r.id))
  })

describe("retention", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("deletes old notifications, but never what a registered consumer has not processed unless forced", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({ id: "keeper", channels: [channel] })
        const processed = yield* PgWatch.notifyMany(channel, ["a", "b"])
        const stop = yield* start(consumer)
        yield* takeN(received, 2)
        yield* stop
        const unprocessed = yield* PgWatch.notifyMany(channel, ["c"])
        const recent = yield* PgWatch.notifyMany(channel, ["d"])
        yield* age([...processed, ...unprocessed], 10)
        const all = [...processed, ...unprocessed, ...recent]

        const dry = yield* Retention.cleanup({ olderThan: "7 days", dryRun: true })
        expect(dry).toEqual({ deleted: 2, kept: 1 })
        expect(yield* remaining(all)).toEqual(all)

        expect(yield* Retention.cleanup({ olderThan: "7 days" })).toEqual({ deleted: 2, kept: 1 })
        expect(yield* remaining(all)).toEqual([...unprocessed, ...recent])

        expect(yield* Retention.cleanup({ olderThan: "7 days", force: true })).toEqual({ deleted: 1, kept: 0 })
        expect(yield* remaining(all)).toEqual(recent)
      }))
  })
})
