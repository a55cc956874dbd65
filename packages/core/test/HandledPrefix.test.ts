import { describe, expect, it } from "@effect/vitest"
import * as HandledPrefix from "../src/internal/handledPrefix.js"

describe("HandledPrefix", () => {
  it("moves only over a run handled from the start, whatever order handlers finish in", () => {
    const prefix = HandledPrefix.make(5)
    expect(prefix.complete(2)).toBe(0)
    expect(prefix.complete(1)).toBe(0)
    expect(prefix.complete(4)).toBe(0)
    // The first finishes last of the three: the run now reaches the gap at 3.
    expect(prefix.complete(0)).toBe(3)
    expect(prefix.complete(3)).toBe(5)
  })

  it("in order, each completion moves it by one", () => {
    const prefix = HandledPrefix.make(3)
    expect([0, 1, 2].map(prefix.complete)).toEqual([1, 2, 3])
  })
})
