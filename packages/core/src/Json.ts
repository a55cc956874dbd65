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
 * A payload costs `JSON.parse` plus a scan that skips its strings; one with a number a double
 * cannot hold is parsed by `JSON.parse` too, with that number swapped for a marker.
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
export const parse = (text: string): unknown => {
  const inexact = inexactNumbers(text)
  return inexact === undefined ? JSON.parse(text) : parseExact(text, inexact)
}

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/
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

/** The exact value of a number literal that no double holds. */
const exactValue = (literal: string): bigint | BigDecimal.BigDecimal => {
  if (!FRACTION_OR_EXPONENT.test(literal)) return BigInt(literal)
  const decimal = BigDecimal.fromString(literal)
  if (decimal._tag === "Some") return decimal.value
  // An exponent beyond ±(2^53 − 1): PostgreSQL's numeric could not hold it either.
  throw new RangeError(`the JSON number ${literal.length > 40 ? `${literal.slice(0, 40)}…` : literal} is out of range`)
}

const isDigit = (c: number) => c >= 48 && c <= 57
const isExponent = (c: number) => c === 101 || c === 69
const isNumberCharacter = (c: number) => isDigit(c) || c === 46 || c === 43 || c === 45 || isExponent(c)

/** Whether the quote at `at` is escaped (preceded by an odd number of backslashes). */
const isEscaped = (text: string, at: number) => {
  let backslashes = 0
  while (text.charCodeAt(at - 1 - backslashes) === 92 /* \ */) backslashes += 1
  return backslashes % 2 === 1
}

/**
 * Where `JSON.parse` would change a number in the text: the start and end of each such
 * literal, in order; undefined when there is none. Strings are skipped with `indexOf`, and a
 * number shorter than 16 characters without an exponent has at most 15 significant digits,
 * which a double always prints back the same: only longer numbers are checked. A double
 * written by JavaScript (0.30000000000000004) prints back as the same text, so it is exact
 * too. Text that is not JSON may give anything: `JSON.parse` rejects it either way.
 */
const inexactNumbers = (text: string): Array<number> | undefined => {
  let found: Array<number> | undefined
  let i = 0
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) {
      let end = text.indexOf("\"", i + 1)
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf("\"", end + 1)
      if (end === -1) return found
      i = end + 1
    } else if (isDigit(c) || c === 45 /* - */) {
      const start = i
      let exponent = false
      for (let d = c; isNumberCharacter(d); d = text.charCodeAt(++i)) exponent ||= isExponent(d)
      if (exponent || i - start >= 16) {
        const literal = text.slice(start, i)
        // Not a JSON number: the exact parse lets JSON.parse reject it.
        if (!JSON_NUMBER.test(literal) || exactNumber(literal) === undefined) (found ??= []).push(start, i)
      }
    } else {
      i += 1
    }
  }
  return found
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
 * Stands in for a number during the exact parse. No payload can hold it: it starts with NUL,
 * which jsonb refuses in strings, and goes on with a token drawn when the process starts.
 */
const MARKER = `\u0000pgwatch-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}:`
const ESCAPED_MARKER = JSON.stringify(MARKER).slice(1, -1)

/**
 * The exact parse. Each number `JSON.parse` would change is swapped for a string holding the
 * marker and the number's index; `JSON.parse` does the rest (its speed, its handling of
 * duplicate keys and deep nesting, its errors), then a loop over an explicit stack puts the
 * exact values in the markers' places.
 */
const parseExact = (text: string, spans: ReadonlyArray<number>): unknown => {
  const values: Array<unknown> = []
  let swapped = ""
  let from = 0
  for (let i = 0; i < spans.length; i += 2) {
    const literal = text.slice(spans[i], spans[i + 1])
    // Not a JSON number: let JSON.parse say what is wrong.
    if (!JSON_NUMBER.test(literal)) return JSON.parse(text)
    swapped += `${text.slice(from, spans[i])}"${ESCAPED_MARKER}${values.length}"`
    values.push(exactValue(literal))
    from = spans[i + 1]!
  }
  swapped += text.slice(from)
  let root: unknown
  try {
    root = JSON.parse(swapped)
  } catch (error) {
    // The swap keeps valid JSON valid: the text itself is wrong, and JSON.parse says where.
    JSON.parse(text)
    throw error
  }
  const valueOf = (s: string) => values[Number(s.slice(MARKER.length))]
  if (typeof root === "string") return root.startsWith(MARKER) ? valueOf(root) : root
  let left = values.length
  const stack: Array<unknown> = [root]
  while (left > 0 && stack.length > 0) {
    const container = stack.pop()
    if (typeof container !== "object" || container === null) continue
    if (Array.isArray(container)) {
      for (let i = 0; i < container.length; i++) {
        const v: unknown = container[i]
        if (typeof v === "string" && v.startsWith(MARKER)) {
          container[i] = valueOf(v)
          left -= 1
        } else if (typeof v === "object" && v !== null) stack.push(v)
      }
    } else {
      const object = container as Record<string, unknown>
      for (const key of Object.keys(object)) {
        const v = object[key]
        if (typeof v === "string" && v.startsWith(MARKER)) {
          setKey(object, key, valueOf(v))
          left -= 1
        } else if (typeof v === "object" && v !== null) stack.push(v)
      }
    }
  }
  // A number not found as a value was a key (not JSON: JSON.parse throws) or a value that a
  // later duplicate key replaced (JSON: fine).
  if (left > 0) JSON.parse(text)
  return root
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
