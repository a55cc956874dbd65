/**
 * Text for log lines: untrusted text made visible and short, and errors as one line with
 * PostgreSQL's own message.
 */

// C0 and C1 controls (newlines, ANSI escapes), line/paragraph separators and bidi overrides:
// each could forge or disguise a log line.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * Untrusted text (a foreign NOTIFY payload, a server message quoting user input) for a log
 * line: every control character as a visible escape (`\n`, `\u001b`), cut at `max` characters.
 */
export const escapeUntrusted = (text: string, max = 200): string =>
  escapeControls(text.length > max ? `${text.slice(0, max)}…(${text.length - max} more chars)` : text)

/**
 * Text with every control character as a visible escape (`\n`, `\u001b`): one line that
 * cannot forge or disguise another, and that PostgreSQL's `text` can store (no NUL).
 */
export const escapeControls = (text: string): string =>
  text.replace(UNSAFE, (char) => {
    switch (char) {
      case "\n":
        return "\\n"
      case "\r":
        return "\\r"
      case "\t":
        return "\\t"
      default:
        return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`
    }
  })

interface WithCause {
  readonly message?: unknown
  readonly cause?: unknown
  readonly code?: unknown
  readonly _tag?: unknown
}

/**
 * One line for an error: pgwatch's message, then PostgreSQL's message text and SQLSTATE
 * (`terminating connection due to idle-session timeout (57P05)`), never a stack trace.
 * `@effect/sql`'s generic "Failed to execute statement" gives way to the driver's message.
 */
export const describeError = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (typeof current !== "object") {
      parts.push(String(current))
      break
    }
    const e = current as WithCause
    const text = typeof e.message === "string" ? e.message : ""
    const generic = e._tag === "SqlError" && e.cause !== undefined
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) {
      // The server's whole message (it may quote user input with newlines: escaped below).
      parts.push(`${text} (${e.code})`)
      break
    }
    const message = text.split("\n")[0]!
    if (message !== "" && !generic) parts.push(message)
    current = e.cause
  }
  const text = parts.filter((part, i) => part !== parts[i - 1]).join(": ")
  return escapeUntrusted(text === "" ? String(error) : text, 500)
}
