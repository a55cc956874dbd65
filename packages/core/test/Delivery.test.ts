import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, recordingConsumer, start, takeN, nothingMore, watchLayer } from "./utils.js"

describe("delivery", () => {
  it.layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("plays back the backlog, then follows live notifications, each once and in order", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const backlog = yield* Effect.forEach([1, 2, 3], (n) => PgWatch.notify(channel, { n }))
        const { consumer, received } = yield* recordingConsumer({ id: "c1", channels: [channel] })
        const stop = yield* start(consumer)
        const replayed = yield* takeN(received, 3)
        expect(replayed.map((r) => r.id)).toEqual(backlog)
        expect(replayed.every((r) => r.isReplay)).toBe(true)
        expect(replayed.map((r) => r.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])

        const live = yield* PgWatch.notify(channel, { n: 4 })
        const [fourth] = yield* takeN(received, 1)
        expect(fourth!.id).toBe(live)
        expect(fourth!.isReplay).toBe(false)
        expect(yield* nothingMore(received)).toHaveLength(0)
        yield* stop
      }))
  })
})
