import * as Cause from "effect/Cause"
import { redactText } from "./redact.js"

const sqlState = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  const code = (cause as { readonly code?: unknown }).code
  return typeof code === "string" ? code : undefined
}

const firstLine = (text: string) => text.split("\n")[0]!

/**
 * One line for any failure the command can end with: its own errors, pgwatch's, the
 * database's (with the SQLSTATE) and configuration errors. Never a stack trace, never a
 * password of a connection string.
 */
export const describeError = (error: unknown): string => redactText(describe(error))

const describe = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return String(error)
  const tagged = error as { readonly _tag?: unknown; readonly message?: unknown; readonly cause?: unknown }
  switch (tagged._tag) {
    case "CliError":
    case "PgWatchError":
    case "AdminError":
      return String(tagged.message)
    case "SqlError": {
      const cause = tagged.cause
      const state = sqlState(cause)
      const detail = cause instanceof Error ? firstLine(cause.message) : String(tagged.message)
      return `database error: ${detail}${state !== undefined && /^[0-9A-Z]{5}$/.test(state) ? ` (SQLSTATE ${state})` : ""}`
    }
    case "And":
    case "Or":
    case "InvalidData":
    case "MissingData":
    case "SourceUnavailable":
    case "Unsupported":
      return `invalid setting: ${String(error)}`
  }
  if (Cause.isCause(error)) return firstLine(Cause.pretty(error))
  return error instanceof Error ? firstLine(error.message) : String(error)
}

/**
 * The exit code for a failure: 2 for a usage error (what was typed is wrong: a bad option or
 * argument value, a missing choice; nothing was done), 1 for a failure while doing the work
 * (the database, the config file, an unknown consumer, ...).
 */
export const exitCode = (error: unknown): 1 | 2 => {
  if (typeof error !== "object" || error === null) return 1
  const tagged = error as { readonly _tag?: unknown; readonly reason?: unknown }
  const usage = (tagged._tag === "CliError" && tagged.reason === "InvalidInput") ||
    (tagged._tag === "AdminError" && tagged.reason === "InvalidArgument")
  return usage ? 2 : 1
}
