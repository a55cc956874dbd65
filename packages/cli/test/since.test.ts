import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { parseSince } from "../src/internal/since.js"

const now = Date.parse("2024-05-02T12:00:00Z")
const since = (text: string) => Either.getOrThrowWith(parseSince(text, now), (message) => new Error(message)).toISOString()

// `replay --since`: an age before now, or a date.
describe("--since", () => {
  it("short ages", () => {
    expect(since("90s")).toBe("2024-05-02T11:58:30.000Z")
    expect(since("90m")).toBe("2024-05-02T10:30:00.000Z")
    expect(since(" 2h ")).toBe("2024-05-02T10:00:00.000Z")
    expect(since("1.5d")).toBe("2024-05-01T00:00:00.000Z")
    expect(since("2 h")).toBe("2024-05-02T10:00:00.000Z")
  })

  it("Effect durations", () => {
    expect(since("30 minutes")).toBe("2024-05-02T11:30:00.000Z")
    expect(since("1 hour")).toBe("2024-05-02T11:00:00.000Z")
  })

  it("dates and times", () => {
    expect(since("2024-05-01T10:00:00Z")).toBe("2024-05-01T10:00:00.000Z")
    expect(since("2024-05-01")).toBe("2024-05-01T00:00:00.000Z")
  })

  it("anything else says what to give", () => {
    for (const text of ["yesterday", "", "5 parsecs", "-2h", "12", "May 1"]) {
      expect(parseSince(text, now)).toEqual(Either.left(
        `invalid --since ${JSON.stringify(text)}: give a time (2024-05-01T10:00:00Z) or an age (90m, 2h, 1d, "30 minutes")`
      ))
    }
  })
})
