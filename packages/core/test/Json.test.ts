import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either, Schema } from "effect"
import * as Json from "../src/Json.js"

const decimal = (text: string) => BigDecimal.unsafeFromString(text)

/** The message of the PgWatchError that `stringify` gives, or the JSON it wrote. */
const written = (value: unknown, root?: string) =>
  Either.match(Json.stringify(value, root), {
    onLeft: (error) => {
      expect(error.reason).toBe("InvalidPayload")
      return `error: ${error.message}`
    },
    onRight: (json) => json
  })

describe("Json.parse", () => {
  it("keeps integers beyond 2^53 exact, as bigints, wherever they are", () => {
    expect(Json.parse(`{"a": 1234567890123456789, "b": [1234567890123456790, -9007199254740993]}`)).toEqual({
      a: 1234567890123456789n,
      b: [1234567890123456790n, -9007199254740993n]
    })
    expect(Json.parse("9007199254740993")).toBe(9007199254740993n)
    expect(Json.parse("-9007199254740993")).toBe(-9007199254740993n)
    // The largest safe integer stays a number; 2^53 itself is not safe.
    expect(Json.parse("[9007199254740991, 9007199254740992]")).toEqual([9007199254740991, 9007199254740992n])
    expect(Json.parse("[[[[[12345678901234567890]]], 1]]")).toEqual([[[[[12345678901234567890n]]], 1]])
  })

  it("keeps a decimal a double cannot hold exact, as a BigDecimal; the rest stay numbers", () => {
    const big = Json.parse("12345678901234567.89")
    expect(BigDecimal.isBigDecimal(big) && BigDecimal.format(big)).toBe("12345678901234567.89")
    expect(Json.parse("1e400")).toEqual(decimal("1e400"))
    expect(Json.parse("1e-400")).toEqual(decimal("1e-400"))
    expect(Json.parse(`{"x": 0.1000000000000000055511151231257827}`)).toEqual({ x: decimal("0.1000000000000000055511151231257827") })
    // Each prints back as the decimal it was written as: a number, as JSON.parse gives.
    for (const text of ["0.1", "1.5e-7", "0.30000000000000004", "5e-324", "1.7976931348623157e308", "1e21", "0.00000015", "1.0"]) {
      expect(Json.parse(`[${text}, 12345678901234567890]`)).toEqual([JSON.parse(text), 12345678901234567890n])
    }
    expect(Object.is(Json.parse("-0"), -0)).toBe(true)
    expect(Object.is((Json.parse("[-0, 12345678901234567890]") as Array<unknown>)[0], -0)).toBe(true)
  })

  it("leaves strings alone, digits and escapes included", () => {
    const text = `{"card": "4111111111111111", "note": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\n", "1234567890123456789": true}`
    const expected = { card: "4111111111111111", note: "café 😀 \"q\" \\ \n", "1234567890123456789": true }
    expect(Json.parse(text)).toEqual(expected)
    // The same through the exact parser (a number JSON.parse would round sends it there).
    expect(Json.parse(`[${text}, 12345678901234567890]`)).toEqual([expected, 12345678901234567890n])
    expect(Json.parse(`["1e400", 1e400]`)).toEqual(["1e400", decimal("1e400")])
  })

  it("agrees with JSON.parse on everything else, fast path or not", () => {
    const texts = [
      `{"a": 1, "a": 2}`,
      `{"b": 1, "1": 2, "a": {"c": [true, false, null, "", {}, []]}}`,
      ` [ 1 , -2.5e3 , 3E+2 , "x" ] `,
      `"plain"`,
      `null`
    ]
    for (const text of texts) {
      expect(Json.parse(text)).toEqual(JSON.parse(text))
      // The same value through the exact parser.
      expect(Json.parse(`[${text}, 12345678901234567890]`)).toEqual([JSON.parse(text), 12345678901234567890n])
    }
    const proto = Json.parse(`{"__proto__": {"polluted": 1}, "n": 12345678901234567890}`) as Record<string, unknown>
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype)
    expect(Object.keys(proto)).toEqual(["__proto__", "n"])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    const bigProto = Json.parse(`{"__proto__": 12345678901234567890}`) as Record<string, unknown>
    expect([Object.getPrototypeOf(bigProto), Object.getOwnPropertyDescriptor(bigProto, "__proto__")?.value])
      .toEqual([Object.prototype, 12345678901234567890n])
    // A duplicate key keeps the last value, whichever of them is exact.
    expect(Json.parse(`{"a": 12345678901234567890, "a": 1}`)).toEqual({ a: 1 })
    expect(Json.parse(`{"a": 1, "a": 12345678901234567890}`)).toEqual({ a: 12345678901234567890n })
  })

  it("rejects what JSON.parse rejects, with its message", () => {
    const invalid = [
      "[1,]",
      `{"a" 1}`,
      "01234567890123456789",
      "[12345678901234567890 2]",
      `{"a": 12345678901234567890,}`,
      `{12345678901234567890: 1}`,
      "[1.2.3.4.5.6.7.8.9.0.1.2.3.4.5.6]",
      "[1-12345678901234567890]",
      `["unterminated, 12345678901234567890]`,
      "[123456789012345.]",
      "[1.e400]",
      `"\\x"`,
      "",
      "[1"
    ]
    for (const text of invalid) {
      const message = (() => {
        try {
          JSON.parse(text)
          return "parsed"
        } catch (error) {
          return (error as Error).message
        }
      })()
      expect(() => Json.parse(text), text).toThrow(SyntaxError)
      expect(() => Json.parse(text), text).toThrow(message)
    }
  })

  it("refuses a number no exact value can hold, rather than rounding it", () => {
    expect(() => Json.parse("[1e99999999999999999999]")).toThrow("the JSON number 1e99999999999999999999 is out of range")
  })

  it("parses nesting as deep as jsonb allows without overflowing the stack", () => {
    const depth = 100_000
    let value = Json.parse(`${"[".repeat(depth)}12345678901234567890${"]".repeat(depth)}`)
    let levels = 0
    while (Array.isArray(value)) {
      value = value[0]
      levels += 1
    }
    expect([levels, value]).toEqual([depth, 12345678901234567890n])
  })
})

describe("Json.stringify", () => {
  it("writes bigints and BigDecimals as exact JSON numbers, and what parse reads back", () => {
    const value = { id: 1234567890123456789n, amount: decimal("12345678901234567.89"), tiny: decimal("1e-400"), n: -9007199254740993n }
    const json = written(value)
    expect(json).toBe(`{"id":1234567890123456789,"amount":12345678901234567.89,"tiny":1e-400,"n":-9007199254740993}`)
    const back = Json.parse(json) as typeof value
    expect([back.id, back.n]).toEqual([value.id, value.n])
    expect(BigDecimal.equals(back.amount, value.amount) && BigDecimal.equals(back.tiny, value.tiny)).toBe(true)
    expect(written(back)).toBe(json)
  })

  it("writes what JSON.stringify writes for ordinary values", () => {
    const value = { s: "café 😀 \"\n", n: [0, 1.5e-7, 0.1, -3], b: true, z: null, d: new Date(0), nested: { u: undefined, k: 1 } }
    expect(written(value)).toBe(JSON.stringify(value))
    const shared = { x: 1 }
    expect(written([shared, shared])).toBe(`[{"x":1},{"x":1}]`)
    expect(written(Object.assign(Object.create(null), { k: 1 }))).toBe(`{"k":1}`)
    expect(written({ toJSON: () => ({ via: "toJSON" }) })).toBe(`{"via":"toJSON"}`)
  })

  it("refuses every value with no faithful JSON form, naming where it is", () => {
    const cyclic: Record<string, unknown> = { a: { b: [1] } }
    ;((cyclic.a as Record<string, unknown>).b as Array<unknown>).push(cyclic.a)
    class Point {
      constructor(readonly x: number) {}
    }
    const cases: Array<[unknown, string]> = [
      [{ amount: NaN }, "payload.amount is NaN"],
      [{ x: [1, Infinity] }, "payload.x[1] is Infinity"],
      [{ x: -Infinity }, "payload.x is -Infinity"],
      [{ "odd key": { v: -0 } }, `payload["odd key"].v is -0`],
      [{ tags: new Map([["a", 1]]) }, "payload.tags is a Map (convert it, e.g. Object.fromEntries(map))"],
      [new Set([1]), "payload is a Set (convert it, e.g. [...set])"],
      [{ f: () => 1 }, "payload.f is a function"],
      [{ s: Symbol("s") }, "payload.s is a symbol"],
      [undefined, "payload is undefined"],
      [[1, undefined], "payload[1] is undefined"],
      [{ p: new Point(1) }, "payload.p is a Point with no toJSON method"],
      [cyclic, "payload.a.b[1] refers back to an object that contains it (a cycle)"],
      [{ at: new Date(Number.NaN) }, "payload.at is an invalid Date"],
      [{ s: "a\u0000b" }, "payload.s contains a NUL character (\\u0000)"],
      [{ s: "x\ud800" }, "payload.s contains an unpaired surrogate (\\ud800)"],
      [{ ["\udc00"]: 1 }, `payload["\\udc00"] has a key that contains an unpaired surrogate (\\udc00)`]
    ]
    for (const [value, message] of cases) {
      expect(written(value)).toContain(`error: payload has no faithful JSON form: ${message}`)
    }
    expect(written({ n: NaN }, "payloads[3]")).toBe("error: payloads[3] has no faithful JSON form: payloads[3].n is NaN")
  })
})

describe("Json schemas", () => {
  it("Integer decodes numbers and bigints to one bigint type", () => {
    const decode = Schema.decodeUnknownSync(Json.Integer)
    expect(decode(Json.parse("42"))).toBe(42n)
    expect(decode(Json.parse("1234567890123456789"))).toBe(1234567890123456789n)
    expect(() => decode(1.5)).toThrow("expected an integer, got 1.5")
    expect(() => decode("42")).toThrow()
    expect(Schema.encodeSync(Json.Integer)(1234567890123456789n)).toBe(1234567890123456789n)
  })

  it("Decimal decodes numbers, bigints and BigDecimals to an exact BigDecimal", () => {
    const decode = Schema.decodeUnknownSync(Json.Decimal)
    const { a, b, c } = Json.parse(`{"a": 19.99, "b": 12345678901234567.89, "c": 12345678901234567890}`) as Record<string, unknown>
    expect(BigDecimal.format(decode(a))).toBe("19.99")
    expect(BigDecimal.format(decode(b))).toBe("12345678901234567.89")
    expect(BigDecimal.format(decode(c))).toBe("12345678901234567890")
    expect(() => decode(Infinity)).toThrow()
    expect(written({ amount: Schema.encodeSync(Json.Decimal)(decode(b)) })).toBe(`{"amount":12345678901234567.89}`)
  })
})
