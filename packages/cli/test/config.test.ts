import { afterAll, describe, expect, it } from "@effect/vitest"
import * as NodePath from "node:path"
import { databaseUrl, dropSchema, FIXTURES, migratedSchema, PROJECT, run, start } from "./utils.js"

const services = NodePath.join(FIXTURES, "services")

describe.concurrent("the config file's settings", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("takes database and schema from the config file, below the flags; provides its layer to the handlers", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = { FIXTURE_DATABASE_URL: databaseUrl, FIXTURE_SCHEMA: schema }
    const status = await run(["status"], { cwd: services, env })
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain(`no consumer has registered in schema ${schema} yet`)
    // A flag wins over the file: that schema is not migrated.
    const flagged = await run(["status", "--schema", "cli_not_there"], { cwd: services, env })
    expect(flagged.stderr).toContain(`the pgwatch schema "cli_not_there" is not up to date`)

    const listen = start(["listen"], { cwd: services, env })
    await listen.line(/^pgwatch: listening with 1 consumer /, "stderr")
    const id = (await run(["notify", "greetings", `{"name": "Ada"}`], { cwd: services, env })).stdout.trim()
    expect(await listen.line(/^hello, /)).toBe(`hello, Ada (log ${id})`)
    expect((await listen.stop()).code).toBe(0)
  })

  it("a config file whose database variable is unset falls back to the environment's database", async () => {
    // `database: { url: process.env.FIXTURE_DATABASE_URL }` with that variable unset names no
    // server: DATABASE_URL must be used, not pg's defaults (localhost, no user name).
    const schema = await migratedSchema()
    schemas.push(schema)
    const status = await run(["status"], { cwd: services, env: { DATABASE_URL: databaseUrl, FIXTURE_SCHEMA: schema } })
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain(`no consumer has registered in schema ${schema} yet`)
  })

  it("shows help with examples for every command", async () => {
    for (const args of [["--help"], ["listen", "--help"], ["failures", "redrive", "--help"], ["triggers", "add", "--help"]]) {
      const result = await run(args, { cwd: PROJECT, env: { NO_COLOR: "1" } })
      expect(result.code, result.stderr).toBe(0)
      const text = result.stdout.replace(/\x1b\[[0-9;]*m/g, "")
      expect(text).toContain("EXAMPLES")
      expect(text).toMatch(/\$ pgwatch /)
    }
  })
})
