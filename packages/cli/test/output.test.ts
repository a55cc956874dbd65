import { describe, expect, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import { age, clip, inline, table } from "../src/internal/output.js"

// What the commands print, without running them.
describe("output", () => {
  it("table: columns padded to the widest cell, the last one not padded, no trailing spaces", () => {
    expect(table(["ID", "CONSUMER", "ERROR"], [["1", "order_mailer", "refused"], ["12345", "x", ""]])).toBe(
      [
        "ID     CONSUMER      ERROR",
        "1      order_mailer  refused",
        "12345  x"
      ].join("\n")
    )
  })

  it("table: a header alone, and rows shorter than the header", () => {
    expect(table(["A", "B"], [])).toBe("A  B")
    expect(table(["A", "B", "C"], [["long value"]])).toBe("A           B  C\nlong value")
  })

  it("age: seconds, minutes, hours, days; negative counts as 0", () => {
    expect([0, 59.4, 60, 245, 3600, 7380, 86400, 273600, -5].map(age)).toEqual([
      "0s", "59s", "1m00s", "4m05s", "1h00m", "2h03m", "1d00h", "3d04h", "0s"
    ])
  })

  it("clip: one line, cut with an ellipsis", () => {
    expect(clip("a\n  b\tc")).toBe("a b c")
    expect(clip("x".repeat(10), 5)).toBe("xxxx…")
    expect(clip("short", 5)).toBe("short")
  })

  it("inline: numbers as exactly as --json writes them (log lines, the demo), and never throws", () => {
    expect(inline({ id: 9007199254740993n, amount: BigDecimal.unsafeFromString("12345678901234567.89"), n: 1 })).toBe(
      `{"id":"9007199254740993","amount":"12345678901234567.89","n":1}`
    )
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(inline(cyclic)).toBe("[object Object]")
  })
})
