import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import * as Cursor from "../src/internal/cursor.js"

const at = (batch: string, afterId: string): Cursor.Cursor => ({ done: "10:20:", batch, afterXid: "15", afterId, live: [], liveAfterId: "0" })
const row = (id: bigint, cursor: Option.Option<Cursor.Cursor>) => ({ id, cursor, redelivery: Option.none() })
const redelivery = (id: bigint) => ({ id, cursor: Option.none(), redelivery: Option.some({ logId: id }) })

// How handled notifications move a consumer's saved position: pure, no database.
describe("cursor advance", () => {
  it("nothing handled is no progress", () => {
    expect(Cursor.advance(Cursor.noProgress, [])).toEqual(Cursor.noProgress)
  })

  it("takes the position after the last row, counts every row and remembers the last log id", () => {
    const progress = Cursor.advance(Cursor.noProgress, [row(1n, Option.some(at("b", "1"))), row(2n, Option.some(at("b", "2")))])
    expect(progress).toEqual({ cursor: Option.some(at("b", "2")), handled: 2, lastLogId: Option.some(2n), redelivered: [] })
  })

  it("a redelivery leaves the position where it is and is listed to clear", () => {
    const before = Cursor.advance(Cursor.noProgress, [row(5n, Option.some(at("b", "5")))])
    const after = Cursor.advance(before, [redelivery(2n), redelivery(3n)])
    expect(after).toEqual({ cursor: Option.some(at("b", "5")), handled: 3, lastLogId: Option.some(3n), redelivered: [2n, 3n] })
  })

  it("accumulates across calls without changing the progress it was given", () => {
    const first = Cursor.advance(Cursor.noProgress, [redelivery(1n)])
    const second = Cursor.advance(first, [row(9n, Option.some(at("c", "9"))), redelivery(4n)])
    expect(first).toEqual({ cursor: Option.none(), handled: 1, lastLogId: Option.some(1n), redelivered: [1n] })
    expect(second).toEqual({ cursor: Option.some(at("c", "9")), handled: 3, lastLogId: Option.some(4n), redelivered: [1n, 4n] })
  })

  it("a cursor between batches starts after nothing", () => {
    expect(Cursor.between("7:7:")).toEqual({ done: "7:7:", batch: null, afterXid: "0", afterId: "0", live: [], liveAfterId: "0" })
  })
})
