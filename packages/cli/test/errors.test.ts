import { afterAll, describe, expect, it } from "@effect/vitest"
import { migrationNames } from "../../../test-support/migrations.js"
import { dbEnv, dropSchema, freshSchema, migratedSchema, run } from "./utils.js"

const expectOneLineError = (result: { code: number | null; stderr: string }, ...parts: Array<string | RegExp>) => {
  expect(result.code, result.stderr).toBe(1)
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
    expectOneLineError(await run(["notify", "orders", "{oops"], { env }), /^pgwatch: invalid JSON payload: /)
    expectOneLineError(await run(["notify", "orders", "-"], { env, input: "" }), /invalid JSON payload/)
    expectOneLineError(await run(["notify", "bad-name", "{}"], { env }), `invalid channel name "bad-name"`)
    expectOneLineError(await run(["notify", "c".repeat(64), "{}"], { env }), "invalid channel name", "at most 63")

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
    expectOneLineError(await run(["replay", "--consumer", "ghost"], { env }), "exactly one of --ids or --since")
    expectOneLineError(await run(["replay", "--consumer", "ghost", "--ids", "1,x"], { env }), `invalid log id "x"`)
    expectOneLineError(await run(["failures", "redrive"], { env }), "--all, --consumer <id> and/or --ids")
    const usage = await run(["listen", "--max-batch-size", "many"], { env })
    expect(usage.code).toBe(2)
    expect(usage.stdout + usage.stderr).toMatch(/not a integer/)
  })
})
