import { describe, expect, it } from "@effect/vitest"
import { describe as describeValue } from "../src/internal/describe.js"

// Error texts for logs and dead letters: whatever the value, one line and no throw.
describe("describe", () => {
  it("plain values", () => {
    expect(describeValue("text")).toBe("text")
    expect(describeValue(10n)).toBe("10n")
    expect(describeValue({ amount: 10n, list: [1, "a", null, undefined] })).toBe(`{"amount":10n,"list":[1,"a",null,undefined]}`)
    expect(describeValue(new Date("2024-01-01T00:00:00Z"))).toBe("2024-01-01T00:00:00.000Z")
    expect(describeValue(new Date(Number.NaN))).toBe("Invalid Date")
    expect(describeValue(function send() {})).toBe("[function send]")
    expect(describeValue(Symbol("s"))).toBe("Symbol(s)")
  })

  it("errors by name and message, with their cause", () => {
    expect(describeValue(new RangeError("too deep"))).toBe("RangeError: too deep")
    expect(describeValue(new Error("outer", { cause: { code: 7n } }))).toBe(`outer (cause: {"code":7n})`)
  })

  it("cycles, throwing getters and throwing proxies", () => {
    const cyclic: Record<string, unknown> = { name: "a" }
    cyclic.self = cyclic
    expect(describeValue(cyclic)).toBe(`{"name":"a","self":[Circular]}`)
    const getter = { get broken() { throw new Error("no") }, fine: 1 }
    expect(describeValue(getter)).toBe(`{"broken":"[unreadable]","fine":1}`)
    const proxy = new Proxy({}, { ownKeys: () => { throw new Error("trap") }, getPrototypeOf: () => { throw new Error("trap") } })
    expect(describeValue(proxy)).toBe("[undescribable value]")
    const badMessage = Object.assign(new Error("x"), {})
    Object.defineProperty(badMessage, "message", { get: () => { throw new Error("no") } })
    expect(describeValue(badMessage)).toBe("Error")
  })

  it("deep values are cut at a depth, huge ones at the limit", () => {
    let deep: unknown = 1
    for (let i = 0; i < 100_000; i++) deep = [deep]
    expect(describeValue(deep)).toBe(`${"[".repeat(8)}[…]${"]".repeat(8)}`)
    const huge = describeValue({ text: "x".repeat(1_000_000) })
    expect(huge).toHaveLength(1001)
    expect(huge.endsWith("…")).toBe(true)
    expect(describeValue(Array.from({ length: 1_000_000 }, (_, i) => i), 50)).toHaveLength(51)
  })

  it("stays one line that PostgreSQL can store (no NUL)", () => {
    expect(describeValue("a\nb\r\u0000c")).toBe("a\\nb\\r\\u0000c")
  })

  it("escapes ANSI escapes and tabs as log lines do: a handler's error cannot forge status output", () => {
    expect(describeValue(new Error("refused\u001b[2K\tWARN forged"))).toBe("refused\\u001b[2K\\tWARN forged")
  })
})
