import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect } from "effect"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, watchLayer } from "./utils.js"

describe("running marks, batched for the process", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("consumers starting together are registered and marked; the same id twice is two runs, the later owning the row", () =>
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
        expect(yield* rows()).toEqual([
          { id: "marks_a", running: true, pid: null },
          { id: "marks_b", running: true, pid: null },
          { id: "marks_first", running: true, pid: null }
        ])

        // The earlier run of marks_a no longer owns its row: its writes touch nothing.
        yield* Effect.all([marks.listening("marks_a", a1!, 11), marks.listening("marks_b", b!, 12)], { concurrency: "unbounded" })
        yield* marks.stop("marks_a", a1!)
        expect((yield* rows()).slice(0, 2)).toEqual([
          { id: "marks_a", running: true, pid: null },
          { id: "marks_b", running: true, pid: 12 }
        ])
        yield* Effect.all([marks.stop("marks_a", a2!), marks.stop("marks_b", b!)], { concurrency: "unbounded" })
        expect((yield* rows()).map((r) => r.running)).toEqual([false, false, true])
      }))
  })
})
