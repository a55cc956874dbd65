import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, Stream } from "effect"
import { randomBytes } from "node:crypto"
import * as PgWatch from "../src/PgWatch.js"
import * as Subscription from "../src/Subscription.js"
import { freshChannel, watchLayer } from "./utils.js"

const BUDGET = 1_000_000

/** A payload's size as the log returns it: its JSON text. */
const bytes = (payload: unknown) => Buffer.byteLength(JSON.stringify(payload))

describe("pages bounded by bytes", () => {
  layer(watchLayer({ pageBytes: BUDGET }), { excludeTestServices: true })((it) => {
    it.effect("a backlog larger than the byte budget comes entirely, each once, in order, in pages within the budget", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        // Repeated text is stored compressed (its size is then measured as text), random text
        // is not; one row is larger than the whole budget.
        const compressible = (c: string) => c.repeat(300_000)
        const random = () => randomBytes(150_000).toString("hex")
        const payloads = [
          "a",
          compressible("w"),
          compressible("x"),
          compressible("y"),
          compressible("z"),
          random() + random() + random() + random() + random(),
          random(),
          random(),
          random(),
          "b"
        ]
        const ids = yield* PgWatch.notifyMany(channel, payloads)
        const pages = yield* Subscription.stream({ consumerId: "bytes", channels: [channel] }).pipe(
          Stream.chunks,
          Stream.runFoldWhile(
            [] as Array<Chunk.Chunk<Subscription.Delivery>>,
            (pages) => pages.reduce((n, page) => n + page.length, 0) < ids.length,
            (pages, page) => [...pages, page]
          )
        )
        const delivered = pages.flatMap((page) => Chunk.toReadonlyArray(page))
        expect(delivered.map((d) => d.id)).toEqual(ids)
        expect(delivered.map((d) => d.payload)).toEqual(payloads)
        // Each page stops before its payloads pass the budget; the oversized row comes alone.
        expect(pages.map((page) => page.length)).toEqual([4, 1, 1, 4])
        for (const page of pages) {
          const size = Chunk.reduce(page, 0, (n, d) => n + bytes(d.payload))
          expect(page.length === 1 || size <= BUDGET, `a page of ${page.length} rows, ${size} bytes`).toBe(true)
        }
      }))
  })

  it.effect("page bytes must be a positive integer", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PgWatch.resolve({ pageBytes: 0 }))
      expect(error.message).toBe("page bytes must be a positive integer, got 0")
    }))

  it.effect("PGWATCH_PAGE_BYTES sets the budget", () =>
    Effect.gen(function*() {
      const options = yield* Effect.withConfigProvider(
        PgWatch.config,
        ConfigProvider.fromMap(new Map([["PGWATCH_PAGE_BYTES", "262144"]]))
      )
      expect(options.pageBytes).toBe(262144)
      expect((yield* PgWatch.resolve({})).pageBytes).toBe(16 * 1024 * 1024)
    }))
})
