import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Schedule } from "effect"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, watchLayer } from "./utils.js"

describe("running marks, batched for the process", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("consumers starting together are registered and marked; the same id twice is two runs, the later owning the row; each gets the listen pid", () =>
      Effect.gen(function*() {
        const { marks, settings } = yield* PgWatch.PgWatch
        const sql = yield* PgClient.PgClient
        const channel = freshChannel()
        const starts = [
          { id: "marks_a", channels: [channel], startFrom: "beginning" as const },
          { id: "marks_b", channels: [channel], startFrom: "now" as const },
          { id: "marks_a", channels: [channel], startFrom: "beginning" as const }
        ]
        // While a first start runs, the others gather into one batch (with marks_a twice).
        const [, a1, b, a2] = yield* Effect.all(
          [{ id: "marks_first", channels: [channel], startFrom: "now" as const }, ...starts].map(marks.start),
          { concurrency: "unbounded" }
        )
        expect(new Date(a2!).getTime()).toBeGreaterThanOrEqual(new Date(a1!).getTime())
        expect(a2).not.toBe(a1)
        const rows = () =>
          sql<{ id: string; running: boolean; pid: number | null }>`
            SELECT id, running_since IS NOT NULL AS running, running_backend_pid AS pid
              FROM ${sql(settings.schema)}.consumer ORDER BY id`
        // Each run gets the listen connection's server pid once it is listening.
        const listening = yield* rows().pipe(
          Effect.filterOrFail((all) => all.every((row) => row.pid !== null), () => "no pid yet"),
          Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 500 })
        )
        expect(listening.map((row) => row.running)).toEqual([true, true, true])
        expect(new Set(listening.map((row) => row.pid)).size).toBe(1)

        // The earlier run of marks_a no longer owns its row: stopping it touches nothing.
        yield* marks.stop("marks_a", a1!)
        expect((yield* rows()).map((row) => row.running)).toEqual([true, true, true])
        yield* Effect.all([marks.stop("marks_a", a2!), marks.stop("marks_b", b!)], { concurrency: "unbounded" })
        expect((yield* rows()).map((row) => row.running)).toEqual([false, false, true])
      }))
  })
})
