import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { isConnectionLoss } from "../src/internal/connectionLoss.js"
import { describeError, escapeUntrusted } from "../src/internal/logText.js"
import { databaseError, sqlState } from "../src/internal/sqlState.js"
import { PgWatchError } from "../src/PgWatchError.js"

const pgError = (message: string, code?: string) => Object.assign(new Error(message), code === undefined ? {} : { code })
const sqlError = (cause: unknown) => new SqlError({ cause, message: "Failed to execute statement" })

describe("log text and error classification", () => {
  it("escapes control characters, ANSI escapes and line separators, and cuts long text", () => {
    expect(escapeUntrusted("a\nWARN forged\r\t\u001b[31mred\u0007\u2028\u202e")).toBe(
      "a\\nWARN forged\\r\\t\\u001b[31mred\\u0007\\u2028\\u202e"
    )
    expect(escapeUntrusted("x".repeat(250), 200)).toBe(`${"x".repeat(200)}…(50 more chars)`)
  })

  it("describes errors as one line with PostgreSQL's message and SQLSTATE", () => {
    expect(describeError(sqlError(pgError("permission denied for table dead_letter", "42501")))).toBe(
      "permission denied for table dead_letter (42501)"
    )
    expect(describeError(new PgWatchError({
      reason: "Listener",
      message: "the listen connection failed",
      cause: pgError("terminating connection due to idle-session timeout", "57P05")
    }))).toBe("the listen connection failed: terminating connection due to idle-session timeout (57P05)")
    expect(describeError(pgError("relation \"x\ny\" does not exist", "42P01"))).toBe("relation \"x\\ny\" does not exist (42P01)")
    expect(describeError(new Error("connect ECONNREFUSED 127.0.0.1:5432"))).toBe("connect ECONNREFUSED 127.0.0.1:5432")
  })

  it("tells a lost connection from a failed statement", () => {
    for (const lost of [pgError("terminating connection due to idle-session timeout", "57P05"), pgError("x", "57P01"), pgError("x", "08006"), pgError("Connection terminated unexpectedly")]) {
      expect(isConnectionLoss(sqlError(lost))).toBe(true)
    }
    for (const failed of [pgError("permission denied", "42501"), pgError("canceling statement due to statement timeout", "57014"), pgError("boom")]) {
      expect(isConnectionLoss(sqlError(failed))).toBe(false)
    }
  })

  it("finds PostgreSQL's SQLSTATE and message in an SqlError or pg's error, and nothing else", () => {
    expect(sqlState(sqlError(pgError("permission denied", "42501")))).toBe("42501")
    expect(sqlState(pgError("x", "57P05"))).toBe("57P05")
    expect(databaseError(sqlError(pgError("permission denied", "42501")))).toEqual({ code: "42501", message: "permission denied" })
    const throwing = Object.defineProperty({}, "code", { get: () => { throw new Error("no") } })
    for (const other of [pgError("connect", "ECONNREFUSED"), pgError("plain"), sqlError(undefined), throwing, null, "42501"]) {
      expect(sqlState(other)).toBeUndefined()
    }
  })
})
