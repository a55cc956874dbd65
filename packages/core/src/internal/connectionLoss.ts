import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { sqlState } from "./sqlState.js"

/**
 * SQLSTATEs and driver errors that mean the connection went away, not that the statement
 * was wrong: the server ended the session (57P01 admin shutdown or `pg_terminate_backend`,
 * 57P02 crash, 57P03 not accepting connections yet, 57P05 `idle_session_timeout`, 25P03
 * `idle_in_transaction_session_timeout`), any connection exception (class 08), or the socket
 * closed under the driver.
 */
const LOST_CODES = new Set(["57P01", "57P02", "57P03", "57P05", "25P03"])
const LOST_MESSAGES = /Connection terminated|connection is closed|ECONNRESET|EPIPE|Client has encountered a connection error/i

/** Whether a statement failed because its pooled connection was lost. */
export const isConnectionLoss = (error: SqlError): boolean => {
  const code = sqlState(error)
  if (code !== undefined && (LOST_CODES.has(code) || code.startsWith("08"))) return true
  const message = (error.cause as { readonly message?: unknown } | undefined)?.message
  return typeof message === "string" && LOST_MESSAGES.test(message)
}

/**
 * Runs an idempotent statement again (on a fresh pooled connection) when its connection was
 * lost, e.g. a pooled connection the server ended for being idle (`idle_session_timeout`)
 * just as it was handed out. Only for reads and writes that are safe to repeat: a write that
 * may have committed before the connection dropped must not be retried blindly.
 */
export const retryIdempotent = <A, R>(statement: Effect.Effect<A, SqlError, R>): Effect.Effect<A, SqlError, R> =>
  Effect.retry(statement, {
    while: isConnectionLoss,
    // The pool drops a dead client once its socket closes: a short pause lets that happen.
    schedule: Schedule.exponential("20 millis"),
    times: 3
  })
