/**
 * Payloads as exact JSON. `JSON.parse` turns every number into a double, so an id such as
 * 1234567890123456789 arrives as 1234567890123456800 and a handler can act on the wrong row.
 * pgwatch reads payloads with `parse`, which keeps every number exact:
 *
 * - an integer outside ±(2^53 − 1) becomes a `bigint`;
 * - a number with a fraction or an exponent stays a `number` when the double prints back as
 *   the same decimal value (`0.1`, `19.99`, `1.5e-7`), otherwise it becomes an exact
 *   `BigDecimal` from `effect/BigDecimal` (`12345678901234567.89`, `1e400`);
 * - everything else is what `JSON.parse` gives.
 *
 * Payloads without a long number cost `JSON.parse` plus one regular-expression scan.
 * `stringify` is the other direction: it writes `bigint` and `BigDecimal` as exact JSON
 * numbers and refuses any value that has no faithful JSON form, naming where it is.
 *
 * @since 0.1.0
 */
import * as BigDecimal from "effect/BigDecimal"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { PgWatchError } from "./PgWatchError.js"

// ---------------------------------------------------------------------------------------------
// parse

/**
 * Parses JSON text like `JSON.parse` (same errors, same handling of duplicate keys), but
 * without rounding any number: see the module's description. Throws a `SyntaxError` on text
 * that is not JSON.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (text: string): unknown => hasInexactNumber(text) ? parseExact(text) : JSON.parse(text)

const STRING = /"[^"\\\u0000-\u001f]*(?:\\[^\u0000-\u001f][^"\\\u0000-\u001f]*)*"/y
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y

const FRACTION_OR_EXPONENT = /[.eE]/

/** The number `JSON.parse` gives for a literal, if that is its exact value; else undefined. */
const exactNumber = (literal: string): number | undefined => {
  const n = Number(literal)
  if (!FRACTION_OR_EXPONENT.test(literal)) return Number.isSafeInteger(n) ? n : undefined
  if (!Number.isFinite(n)) return undefined
  // A double written by JavaScript comes back as the same text; otherwise compare values.
  if (String(n) === literal) return n
  return BigDecimal.equals(BigDecimal.unsafeFromString(literal), BigDecimal.unsafeFromString(String(n))) ? n : undefined
}

/** The exact value of a JSON number literal: see the module's description. */
const numberValue = (literal: string): number | bigint | BigDecimal.BigDecimal =>
  exactNumber(literal) ?? (FRACTION_OR_EXPONENT.test(literal) ? BigDecimal.unsafeFromString(literal) : BigInt(literal))

const isDigit = (c: number) => c >= 48 && c <= 57
const isNumberCharacter = (c: number) => isDigit(c) || c === 46 || c === 43 || c === 45 || isExponent(c)
const isExponent = (c: number) => c === 101 || c === 69

/** Whether the quote at `at` is escaped (preceded by an odd number of backslashes). */
const isEscaped = (text: string, at: number) => {
  let backslashes = 0
  while (text.charCodeAt(at - 1 - backslashes) === 92 /* \ */) backslashes += 1
  return backslashes % 2 === 1
}

/**
 * Whether `JSON.parse` would change some number in the text. Strings are skipped with
 * `indexOf`, and a number shorter than 16 characters without an exponent has at most 15
 * significant digits, which a double always prints back the same: only longer numbers are
 * checked. A double written by JavaScript (0.30000000000000004) prints back as the same text,
 * so it is exact too. Text that is not JSON answers true, so that the exact parser reports
 * the error.
 */
const hasInexactNumber = (text: string): boolean => {
  let i = 0
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) {
      let end = text.indexOf("\"", i + 1)
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf("\"", end + 1)
      if (end === -1) return true
      i = end + 1
    } else if (isDigit(c) || c === 45 /* - */) {
      const start = i
      let exponent = false
      for (let d = c; isNumberCharacter(d); d = text.charCodeAt(++i)) exponent ||= isExponent(d)
      if ((exponent || i - start >= 16) && exactNumber(text.slice(start, i)) === undefined) return true
    } else {
      i += 1
    }
  }
  return false
}

/** Sets a key the way `JSON.parse` does: `__proto__` is an own key, never the prototype. */
const setKey = (object: Record<string, unknown>, key: string, value: unknown) => {
  if (key === "__proto__") {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true })
  } else {
    object[key] = value
  }
}

/**
 * The exact parse: a loop over an explicit stack rather than recursion, so that nesting as
 * deep as jsonb allows cannot overflow the call stack.
 */
const parseExact = (text: string): unknown => new ExactParser(text).parse()

class ExactParser {
  pos = 0
  constructor(readonly text: string) {}

  parse(): unknown {
    const text = this.text
    const containers: Array<Array<unknown> | Record<string, unknown>> = []
    const keys: Array<string> = []
    this.skipWhitespace()
    for (;;) {
      let value: unknown
      const c = text.charCodeAt(this.pos)
      if (c === 123 /* { */) {
        this.pos += 1
        this.skipWhitespace()
        if (text.charCodeAt(this.pos) === 125 /* } */) {
          this.pos += 1
          value = {}
        } else {
          containers.push({})
          keys.push(this.readKey())
          continue
        }
      } else if (c === 91 /* [ */) {
        this.pos += 1
        this.skipWhitespace()
        if (text.charCodeAt(this.pos) === 93 /* ] */) {
          this.pos += 1
          value = []
        } else {
          containers.push([])
          continue
        }
      } else if (c === 34 /* " */) {
        value = this.readString()
      } else if (c === 116 /* t */) {
        value = this.readLiteral("true", true)
      } else if (c === 102 /* f */) {
        value = this.readLiteral("false", false)
      } else if (c === 110 /* n */) {
        value = this.readLiteral("null", null)
      } else {
        value = this.readNumber()
      }
      // A value is complete: put it into its container, closing containers that end here.
      for (;;) {
        this.skipWhitespace()
        const container = containers.at(-1)
        if (container === undefined) {
          if (this.pos !== text.length) this.fail()
          return value
        }
        const isArray = Array.isArray(container)
        if (isArray) container.push(value)
        else setKey(container, keys.pop()!, value)
        const next = text.charCodeAt(this.pos)
        if (next === 44 /* , */) {
          this.pos += 1
          this.skipWhitespace()
          if (!isArray) keys.push(this.readKey())
          break
        }
        if (next !== (isArray ? 93 /* ] */ : 125 /* } */)) this.fail()
        this.pos += 1
        value = containers.pop()
      }
    }
  }

  /** Whatever is wrong, `JSON.parse` describes it best (and the same way as the fast path). */
  fail(): never {
    JSON.parse(this.text)
    throw new SyntaxError(`Unexpected token in JSON at position ${this.pos}`)
  }

  skipWhitespace() {
    let c = this.text.charCodeAt(this.pos)
    while (c === 32 || c === 10 || c === 13 || c === 9) c = this.text.charCodeAt(++this.pos)
  }

  readString(): string {
    STRING.lastIndex = this.pos
    const match = STRING.exec(this.text)
    if (match === null) return this.fail()
    this.pos = STRING.lastIndex
    const token = match[0]
    if (!token.includes("\\")) return token.slice(1, -1)
    try {
      return JSON.parse(token) as string
    } catch {
      return this.fail()
    }
  }

  /** Reads `"key":` and leaves the position at the value. */
  readKey(): string {
    if (this.text.charCodeAt(this.pos) !== 34 /* " */) this.fail()
    const key = this.readString()
    this.skipWhitespace()
    if (this.text.charCodeAt(this.pos) !== 58 /* : */) this.fail()
    this.pos += 1
    this.skipWhitespace()
    return key
  }

  readLiteral<A>(word: string, value: A): A {
    if (!this.text.startsWith(word, this.pos)) this.fail()
    this.pos += word.length
    return value
  }

  readNumber(): number | bigint | BigDecimal.BigDecimal {
    NUMBER.lastIndex = this.pos
    const match = NUMBER.exec(this.text)
    if (match === null) return this.fail()
    this.pos = NUMBER.lastIndex
    return numberValue(match[0])
  }
}

// ---------------------------------------------------------------------------------------------
// stringify

/** A value with no faithful JSON form, and where it is. */
class NoJsonForm {
  constructor(readonly path: string, readonly problem: string) {}
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const pathOf = (parent: string, key: string | number) =>
  typeof key === "number" ? `${parent}[${key}]` : IDENTIFIER.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`

/** NUL and lone surrogates: JSON can spell them, but PostgreSQL's jsonb refuses them. */
const SUSPECT_CHARACTER = /[\u0000\ud800-\udfff]/
const UNSTORABLE_CHARACTER = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

const quote = (text: string, path: string, what: string): string => {
  if (SUSPECT_CHARACTER.test(text)) {
    const bad = UNSTORABLE_CHARACTER.exec(text)
    if (bad !== null) {
      const code = `\\u${bad[0].charCodeAt(0).toString(16).padStart(4, "0")}`
      throw new NoJsonForm(
        path,
        `${what} ${bad[0] === "\u0000" ? "a NUL character" : "an unpaired surrogate"} (${code}), which PostgreSQL's jsonb cannot store`
      )
    }
  }
  return JSON.stringify(text)
}

const describeNumber = (n: number) => Number.isNaN(n) ? "NaN" : Object.is(n, -0) ? "-0 (jsonb stores it as 0)" : String(n)

const typeName = (value: object): string => {
  const constructor = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor
  return typeof constructor?.name === "string" && constructor.name !== "" ? constructor.name : "object"
}

const hint = (value: object): string =>
  value instanceof Map
    ? " (convert it, e.g. Object.fromEntries(map))"
    : value instanceof Set
    ? " (convert it, e.g. [...set])"
    : " with no toJSON method (pass a plain object, or notify with the payload's schema)"

const writeScalar = (value: unknown, path: string): string => {
  switch (typeof value) {
    case "string":
      return quote(value, path, "contains")
    case "number":
      if (Number.isFinite(value) && !Object.is(value, -0)) return String(value)
      throw new NoJsonForm(path, `is ${describeNumber(value)}`)
    case "boolean":
      return value ? "true" : "false"
    case "bigint":
      return value.toString()
    case "undefined":
      throw new NoJsonForm(path, "is undefined")
    default:
      throw new NoJsonForm(path, `is a ${typeof value}`)
  }
}

const write = (input: unknown, path: string, key: string, ancestors: Set<object>): string => {
  let value = input
  if (typeof value === "object" && value !== null && !BigDecimal.isBigDecimal(value)) {
    if (value instanceof Date && Number.isNaN(value.getTime())) throw new NoJsonForm(path, "is an invalid Date")
    const toJSON = (value as { toJSON?: unknown }).toJSON
    if (typeof toJSON === "function") value = toJSON.call(value, key)
  }
  if (typeof value !== "object") return writeScalar(value, path)
  if (value === null) return "null"
  if (BigDecimal.isBigDecimal(value)) return BigDecimal.format(value)
  if (ancestors.has(value)) throw new NoJsonForm(path, "refers back to an object that contains it (a cycle)")
  ancestors.add(value)
  let json: string
  if (Array.isArray(value)) {
    json = "["
    for (let i = 0; i < value.length; i++) {
      json += (i === 0 ? "" : ",") + write(value[i], pathOf(path, i), String(i), ancestors)
    }
    json += "]"
  } else {
    const prototype = Object.getPrototypeOf(value)
    if (prototype !== Object.prototype && prototype !== null) {
      throw new NoJsonForm(path, `is a ${typeName(value)}${hint(value)}`)
    }
    json = "{"
    let first = true
    for (const name of Object.keys(value)) {
      const field = (value as Record<string, unknown>)[name]
      // An absent optional property: left out, as JSON.stringify does.
      if (field === undefined) continue
      const fieldPath = pathOf(path, name)
      json += (first ? "" : ",") + quote(name, fieldPath, "has a key that contains") + ":" +
        write(field, fieldPath, name, ancestors)
      first = false
    }
    json += "}"
  }
  ancestors.delete(value)
  return json
}

/**
 * Writes a value as JSON, exactly: `bigint` and `BigDecimal` become JSON numbers with every
 * digit; `toJSON` methods are used (a `Date` becomes its ISO string); a property whose value
 * is `undefined` is left out, as `JSON.stringify` does. Fails with an `InvalidPayload`
 * `PgWatchError` naming the path of the first value that has no faithful form: NaN,
 * ±Infinity, -0, `undefined` (other than as a property), a function or symbol, a `Map`, a
 * `Set` or another class instance without `toJSON`, an invalid `Date`, a cycle, or a string
 * holding NUL or an unpaired surrogate (which jsonb refuses). `root` names the value in the
 * message (`payload.amount is NaN`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const stringify = (value: unknown, root = "payload"): Either.Either<string, PgWatchError> => {
  try {
    return Either.right(write(value, root, "", new Set()))
  } catch (error) {
    if (error instanceof NoJsonForm) {
      const message = `${root} has no faithful JSON form: ${error.path} ${error.problem}`
      return Either.left(new PgWatchError({ reason: "InvalidPayload", message }))
    }
    const message = error instanceof RangeError
      ? `${root} is nested too deeply to write as JSON`
      : `${root} could not be written as JSON: ${error instanceof Error ? error.message : String(error)}`
    return Either.left(new PgWatchError({ reason: "InvalidPayload", message, cause: error }))
  }
}

// ---------------------------------------------------------------------------------------------
// schemas

/**
 * A payload field holding an integer of any size: `parse` gives a `number` up to ±(2^53 − 1)
 * and a `bigint` beyond; this schema decodes both to `bigint` (rejecting fractions), so a
 * handler sees one type whatever the value. Encodes to the `bigint`, which `notify` writes
 * exactly.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Integer: Schema.Schema<bigint, number | bigint> = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.BigIntFromSelf),
  Schema.BigIntFromSelf,
  {
    strict: true,
    decode: (n, _, ast) =>
      typeof n === "bigint"
        ? ParseResult.succeed(n)
        : Number.isInteger(n)
        ? ParseResult.succeed(BigInt(n))
        : ParseResult.fail(new ParseResult.Type(ast, n, `expected an integer, got ${n}`)),
    encode: ParseResult.succeed
  }
).annotations({ identifier: "Json.Integer" })

/**
 * A payload field holding a decimal of any size or precision (money, `numeric` columns):
 * `parse` gives a `number` when a double holds it exactly, a `bigint` or a `BigDecimal`
 * otherwise; this schema decodes all three to an exact `BigDecimal`. A `number` becomes the
 * decimal it prints as (`19.99`, not 19.989999999999998436805981327779591083526611328125).
 * Encodes to the `BigDecimal`, which `notify` writes exactly.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Decimal: Schema.Schema<BigDecimal.BigDecimal, number | bigint | BigDecimal.BigDecimal> = Schema
  .transformOrFail(
    Schema.Union(Schema.Number, Schema.BigIntFromSelf, Schema.BigDecimalFromSelf),
    Schema.BigDecimalFromSelf,
    {
      strict: true,
      decode: (n, _, ast) =>
        typeof n === "bigint"
          ? ParseResult.succeed(BigDecimal.fromBigInt(n))
          : typeof n !== "number"
          ? ParseResult.succeed(n)
          : Number.isFinite(n)
          ? ParseResult.succeed(BigDecimal.unsafeFromString(String(n)))
          : ParseResult.fail(new ParseResult.Type(ast, n, `expected a finite number, got ${n}`)),
      encode: ParseResult.succeed
    }
  ).annotations({ identifier: "Json.Decimal" })
