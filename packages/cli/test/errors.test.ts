import { afterAll, describe, expect, it } from "@effect/vitest"
import { migrationNames } from "../../../test-support/migrations.js"
import { databaseUrl, dbEnv, dropSchema, freshSchema, migratedSchema, run } from "./utils.js"

/** A failure while doing the work: exit 1. */
const expectOneLineError = (result: { code: number | null; stderr: string }, ...parts: Array<string | RegExp>) =>
  expectOneLine(1, result, ...parts)

/** What was typed is wrong (a bad value, a missing choice): exit 2. */
const expectUsageError = (result: { code: number | null; stderr: string }, ...parts: Array<string | RegExp>) =>
  expectOneLine(2, result, ...parts)

const expectOneLine = (code: number, result: { code: number | null; stderr: string }, ...parts: Array<string | RegExp>) => {
  expect(result.code, result.stderr).toBe(code)
  const lines = result.stderr.trim().split("\n")
  expect(lines, result.stderr).toHaveLength(1)
  expect(result.stderr).not.toMatch(/^\s+at /m)
  for (const part of parts) expect(lines[0]).toMatch(part)
}

describe.concurrent("errors a user must get right", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("an unreachable database: host and port in one line, no stack trace, exit 1", async () => {
    const closed = "postgres://postgres@127.0.0.1:9/test"
    expectOneLineError(
      await run(["status", "--database-url", closed]),
      "pgwatch: cannot connect to PostgreSQL at 127.0.0.1:9/test: connection refused"
    )
    // Settings from the environment are reported the same way, for every database command.
    expectOneLineError(
      await run(["listen"], { env: { PGHOST: "127.0.0.1", PGPORT: "9", PGDATABASE: "app" } }),
      "cannot connect to PostgreSQL at 127.0.0.1:9/app"
    )
    expectOneLineError(await run(["migrate"], { env: { PGWATCH_DATABASE_URL: closed } }), "127.0.0.1:9")
  })

  it("says where pg really connects: a value that is not a URL, a URL without a database", async () => {
    // pg reads "foo" as a relative URL: database foo on a host named "base".
    expectOneLineError(
      await run(["status"], { env: { DATABASE_URL: "foo" } }),
      `pgwatch: cannot connect to PostgreSQL at base:5432/foo (the database URL is not a postgres:// URL, so pg read it as database "foo" on host "base"): `
    )
    // No database in the URL: pg uses the user name; the command says so.
    const url = new URL(databaseUrl)
    url.pathname = ""
    const schema = freshSchema()
    const dry = await run(["migrate", "--dry-run"], { env: { DATABASE_URL: url.href, PGWATCH_SCHEMA: schema } })
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(
      `to schema ${schema} (${url.hostname}:${url.port || 5432}/${decodeURIComponent(url.username) || "postgres"} ` +
        `(no database named, so pg uses the user name "${decodeURIComponent(url.username) || "postgres"}": give one in the URL`
    )
  })

  it("a schema not migrated yet: says to run pgwatch migrate", async () => {
    const schema = freshSchema()
    for (const args of [["status"], ["notify", "orders", "{}"], ["failures"], ["listen", "--consumers", "auditor"]]) {
      expectOneLineError(
        await run(args, { env: dbEnv(schema) }),
        `the pgwatch schema "${schema}" is not up to date (${migrationNames.length} migration(s) pending): run \`pgwatch migrate\``
      )
    }
  })

  it("notify: invalid JSON, a channel PostgreSQL won't accept; valid input prints the log id", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    expectUsageError(await run(["notify", "orders", "{oops"], { env }), /^pgwatch: invalid JSON payload: /)
    expectUsageError(await run(["notify", "orders", "-"], { env, input: "" }), /invalid JSON payload/)
    expectUsageError(await run(["notify", "bad-name", "{}"], { env }), `invalid channel name "bad-name"`)
    expectUsageError(await run(["notify", "c".repeat(64), "{}"], { env }), "invalid channel name", "at most 63")
    // A --schema PostgreSQL would need quoted is typed wrong too (exit 2); in PGWATCH_SCHEMA it is a bad setting (exit 1).
    expectUsageError(
      await run(["status", "--schema", `bad"schema`], { env: { PGWATCH_DATABASE_URL: "postgres://postgres@127.0.0.1:9/test" } }),
      `invalid schema name "bad"schema"`
    )
    expectOneLineError(await run(["status"], { env: { ...env, PGWATCH_SCHEMA: `bad"schema` } }), `invalid schema name "bad"schema"`)
    expectUsageError(
      await run(["demo", "--schema", `bad"schema`, "--database-url", "postgres://postgres@127.0.0.1:9/test"]),
      `invalid schema name "bad"schema"`
    )
    // The same channel check, before connecting, for triggers' --channel (the database is closed).
    const closed = { PGWATCH_DATABASE_URL: "postgres://postgres@127.0.0.1:9/test", PGWATCH_SCHEMA: schema }
    for (const command of ["add", "remove"]) {
      expectUsageError(await run(["triggers", command, "users", "--channel", `a"b`], { env: closed }), `invalid channel name "a\\"b"`)
    }

    const first = await run(["notify", "orders", `{"n": 1}`], { env })
    expect(first.code, first.stderr).toBe(0)
    const piped = await run(["notify", "orders", "-"], { env, input: `{"n": [2, "two"]}\n` })
    expect(piped.code, piped.stderr).toBe(0)
    const ids = [first.stdout.trim(), piped.stdout.trim()]
    expect(ids.every((id) => /^\d+$/.test(id))).toBe(true)
    expect(Number(ids[1])).toBeGreaterThan(Number(ids[0]))
  })

  it("unknown consumers in status and replay name the registered ones; bad arguments are usage errors", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    expectOneLineError(await run(["status", "--consumer", "ghost"], { env }), `unknown consumer "ghost"; no consumer has registered yet`)
    expectOneLineError(await run(["replay", "--consumer", "ghost", "--ids", "1"], { env }), `unknown consumer "ghost"`)
    expectUsageError(await run(["replay", "--consumer", "ghost"], { env }), "exactly one of --ids or --since")
    expectUsageError(await run(["replay", "--consumer", "ghost", "--ids", "1,x"], { env }), `invalid log id "x"`)
    expectUsageError(await run(["failures", "redrive"], { env }), "--all, --consumer <id> and/or --ids")
    const usage = await run(["listen", "--max-batch-size", "many"], { env })
    expect(usage.code).toBe(2)
    expect(usage.stdout + usage.stderr).toMatch(/not a integer/)
  })

  it("exit codes: 2 for what was typed wrong (a wrong type or a bad value), 1 for a failure doing the work", async () => {
    const schema = await migratedSchema()
    const env = dbEnv(schema)
    // Bad values, checked before anything runs: usage errors, each naming the option.
    const badValues: Array<[Array<string>, string]> = [
      [["failures", "--limit", "-1"], "--limit must be a whole number above 0, got -1"],
      [["failures", "--limit", "0"], "--limit must be a whole number above 0, got 0"],
      [["cleanup", "--days", "-2"], "--days must be a whole number, 0 or more, got -2"],
      [["listen", "--timeout", "0"], "--timeout must be a number of seconds above 0, got 0"],
      [["listen", "--shutdown-timeout", "-5"], "--shutdown-timeout must be a number of seconds above 0, got -5"],
      [["listen", "--max-batch-size", "0"], "--max-batch-size must be a whole number above 0, got 0"]
    ]
    for (const [args, message] of badValues) {
      const result = await run(args, { env })
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2)
      expect(result.stdout + result.stderr).toContain(message)
      expect(result.stderr).not.toMatch(/^\s+at /m)
    }
    // Wrong types and unknown options: usage errors too.
    for (const args of [["failures", "--limit", "many"], ["cleanup", "--days", "x"], ["status", "--no-such-option"]]) {
      expect((await run(args, { env })).code, args.join(" ")).toBe(2)
    }
    // Failures while doing the work: exit 1.
    expectOneLineError(await run(["failures", "--consumer", "ghost"], { env }), `unknown consumer "ghost"`)
    expectOneLineError(await run(["status"], { env: dbEnv("cli_not_there") }), "pgwatch migrate")
    expectOneLineError(await run(["status"], { env: { ...env, PGWATCH_MAX_RETRIES: "lots" } }), /PGWATCH_MAX_RETRIES/)
  })
})
