import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as NodePath from "node:path"
import { pgbouncerBinary, skipReason, startPgBouncer } from "../../../test-support/pgbouncer.js"
import { databaseUrl, dbEnv, dropSchema, FIXTURES, handled, migratedSchema, run, start } from "./utils.js"

if (pgbouncerBinary === undefined) console.warn(skipReason)

const services = NodePath.join(FIXTURES, "services")

describe.skipIf(pgbouncerBinary === undefined)("pgwatch listen behind PgBouncer in transaction mode", () => {
  const schemas: Array<string> = []
  const scope = Effect.runSync(Scope.make())
  const bouncer = Effect.runPromise(Scope.extend(startPgBouncer(databaseUrl, "transaction"), scope))
  afterAll(() => Promise.all([...schemas.map(dropSchema), Effect.runPromise(Scope.close(scope, Exit.void))]))

  it("--listen-url direct: live wake-ups (long before --timeout 30); without it: one warning naming the fix, and fast polls", async () => {
    const { url } = await bouncer
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = { ...dbEnv(schema), PGWATCH_DATABASE_URL: url }

    for (const listenUrl of [[`--listen-url`, databaseUrl], []]) {
      const listen = start(["listen", "--consumers", "order_mailer", "--timeout", "30", ...listenUrl], { env })
      await listen.line(/^pgwatch: listening with 1 consumer/, "stderr")
      const id = Number((await run(["notify", "orders", "{}"], { env })).stdout.trim())
      await listen.until(() => handled(listen.stdout).some((h) => h.id === id), "the notification to be handled", 10_000)
      const stopped = await listen.stop()
      expect(stopped.code).toBe(0)
      const warnings = stopped.stderr.split("\n").filter((line) => line.startsWith("WARN"))
      if (listenUrl.length > 0) {
        expect(warnings).toEqual([])
      } else {
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toContain("Fix: set listenUrl (PGWATCH_LISTEN_URL, `pgwatch listen --listen-url`)")
      }
    }
  })

  it("takes the listen URL from the config file's database.listenUrl", async () => {
    const { url } = await bouncer
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = { FIXTURE_DATABASE_URL: url, FIXTURE_LISTEN_URL: databaseUrl, FIXTURE_SCHEMA: schema }
    const listen = start(["listen", "--timeout", "30"], { cwd: services, env })
    await listen.line(/^pgwatch: listening with 1 consumer /, "stderr")
    const id = (await run(["notify", "greetings", `{"name": "Ada"}`], { cwd: services, env })).stdout.trim()
    expect(await listen.line(/^hello, /, "stdout", 10_000)).toBe(`hello, Ada (log ${id})`)
    const stopped = await listen.stop()
    expect(stopped.code).toBe(0)
    expect(stopped.stderr).not.toContain("WARN")
  })
})
