import { describe, expect, it } from "@effect/vitest"
import * as Snapshot from "../src/internal/snapshot.js"

// pg_snapshot's text form, `xmin:xmax:xip,...`: pure, no database.
describe("snapshot parsing", () => {
  it("lists the transactions in progress", () => {
    expect(Snapshot.inProgress("100:105:100,102,104")).toEqual(["100", "102", "104"])
    expect(Snapshot.inProgress("100:105:101")).toEqual(["101"])
  })

  it("none in progress", () => {
    expect(Snapshot.inProgress("100:100:")).toEqual([])
    expect(Snapshot.inProgress(Snapshot.beginning)).toEqual([])
  })

  it("keeps xid8 values beyond 2^53 exact (they stay text)", () => {
    expect(Snapshot.inProgress("9007199254740993:9007199254740995:9007199254740993")).toEqual(["9007199254740993"])
  })

  it("a text without a list (malformed) gives none rather than throwing", () => {
    expect(Snapshot.inProgress("100:105")).toEqual([])
    expect(Snapshot.inProgress("")).toEqual([])
  })
})
