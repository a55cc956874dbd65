/**
 * PostgreSQL's own code and message in a failure: pg's error, or the one an `@effect/sql`
 * `SqlError` wraps. The one place that digs them out; never throws (a getter that throws
 * reads as absent).
 */

const field = (u: unknown, key: string): unknown => {
  try {
    return typeof u === "object" && u !== null ? (u as Record<string, unknown>)[key] : undefined
  } catch {
    return undefined
  }
}

const SQLSTATE = /^[0-9A-Z]{5}$/

/** The server's error: an `SqlError`'s cause, or the value itself. */
const serverError = (error: unknown): unknown => field(error, "_tag") === "SqlError" ? field(error, "cause") : error

/** The SQLSTATE of a failure from the server (`42501`), if it is one. */
export const sqlState = (error: unknown): string | undefined => {
  const code = field(serverError(error), "code")
  return typeof code === "string" && SQLSTATE.test(code) ? code : undefined
}

/** The SQLSTATE and the server's message text of a failure from the server, if it is one. */
export const databaseError = (error: unknown): { readonly code: string; readonly message: unknown } | undefined => {
  const code = sqlState(error)
  return code === undefined ? undefined : { code, message: field(serverError(error), "message") }
}
