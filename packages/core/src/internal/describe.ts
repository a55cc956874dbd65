import { escapeControls } from "./logText.js"

/**
 * Describing any value as one line of text, for logs and stored errors. It never throws:
 * bigints, cycles, getters that throw, proxies, very deep or very large values all give some
 * text, cut at `limit` characters. Control characters (line breaks, ANSI escapes, NUL, which
 * PostgreSQL's `text` refuses) are escaped as log lines escape them (`escapeControls`), so the
 * text can be stored, logged and printed by `status` as one line.
 */
export const describe = (value: unknown, limit = 1000): string => {
  const out: Array<string> = []
  let length = 0
  let cut = false
  const write = (text: string) => {
    if (length >= limit) {
      cut = true
      return
    }
    out.push(text)
    length += text.length
  }
  const seen = new Set<object>()
  const render = (v: unknown, depth: number): void => {
    if (length >= limit) {
      cut = true
      return
    }
    switch (typeof v) {
      case "string":
        return write(depth === 0 ? v : JSON.stringify(v))
      case "bigint":
        return write(`${v}n`)
      case "symbol":
      case "number":
      case "boolean":
      case "undefined":
        return write(String(v))
      case "function":
        return write(`[function ${attempt(() => v.name, "") || "anonymous"}]`)
    }
    if (v === null) return write("null")
    const object = v as object
    if (seen.has(object)) return write("[Circular]")
    if (depth >= 8) return write(Array.isArray(object) ? "[…]" : "{…}")
    seen.add(object)
    try {
      if (object instanceof Error) {
        const name = attempt(() => String(object.name), "Error")
        const message = attempt(() => String(object.message), "")
        write(message === "" ? name : name === "Error" ? message : `${name}: ${message}`)
        const cause = attempt(() => object.cause, undefined)
        if (cause !== undefined) {
          write(" (cause: ")
          render(cause, depth + 1)
          write(")")
        }
        return
      }
      if (object instanceof Date) return write(attempt(() => object.toISOString(), "Invalid Date"))
      if (Array.isArray(object)) {
        write("[")
        const n = attempt(() => object.length, 0)
        for (let i = 0; i < n && length < limit; i++) {
          if (i > 0) write(",")
          render(attempt(() => object[i], "[unreadable]"), depth + 1)
        }
        return write("]")
      }
      write("{")
      const keys = attempt(() => Object.keys(object), [])
      keys.forEach((key, i) => {
        if (length >= limit) return
        if (i > 0) write(",")
        write(`${JSON.stringify(key)}:`)
        render(attempt(() => (object as Record<string, unknown>)[key], "[unreadable]"), depth + 1)
      })
      write("}")
    } finally {
      seen.delete(object)
    }
  }
  try {
    render(value, 0)
  } catch {
    // A proxy whose traps throw, or a stack too deep to walk even this far.
    write("[undescribable value]")
  }
  const text = escapeControls(out.join(""))
  return cut ? `${text.slice(0, limit)}…` : truncate(text, limit)
}

/** The value `read` gives, or `fallback` if it throws. */
const attempt = <A>(read: () => A, fallback: A): A => {
  try {
    return read()
  } catch {
    return fallback
  }
}

/** A text cut to `limit` characters, marked with "…" when cut. */
export const truncate = (text: string, limit: number): string => text.length > limit ? `${text.slice(0, limit)}…` : text
