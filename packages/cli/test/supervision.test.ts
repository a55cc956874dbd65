import { afterAll, describe, expect, it } from "@effect/vitest"
import * as NodePath from "node:path"
import { databaseUrl, dropSchema, FIXTURES, migratedSchema, run, start } from "./utils.js"

const broken = (name: string) => NodePath.join(FIXTURES, "broken", name)

/** An error is one line on stderr naming the consumer, no stack trace, exit 1. */
const expectOneLineError = (result: { code: number | null; stderr: string }, ...parts: Array<string | RegExp>) => {
  expect(result.code, result.stderr).toBe(1)
  const lines = result.stderr.trim().split("\n")
  expect(lines, result.stderr).toHaveLength(1)
  for (const part of parts) expect(lines[0]).toMatch(part)
}

describe.concurrent("consumers that cannot run (pgwatch listen)", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("a consumer with an invalid channel name, or none, is refused before anything runs", async () => {
    expectOneLineError(
      await run(["listen", "--config", broken("bad-channel.config.ts")]),
      `app "shipping": cannot import ./bad-channel.ts`,
      `consumer "shipper": invalid channel name "ship-orders": start with a letter or _`
    )
    expectOneLineError(
      await run(["listen", "--list-consumers", "--config", broken("no-channels.config.ts")]),
      `app "idle" (./no-channels.ts, export idler): consumer "idler": give it at least one channel`
    )
  })

  it("a handler needing a service the config's layer does not provide: listen exits 1 naming both", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = { FIXTURE_DATABASE_URL: databaseUrl, FIXTURE_SCHEMA: schema }
    const config = ["--config", broken("missing-service.config.ts")]
    const listen = start(["listen", ...config], { env })
    await listen.line(/^pgwatch: listening with 1 consumer /, "stderr")
    const notified = await run(["notify", "greetings", `{"name": "Ada"}`, ...config], { env })
    expect(notified.code, notified.stderr).toBe(0)
    const exit = await listen.exited
    expect(exit.code).toBe(1)
    const message = `consumer "greeter" needs service fixture/Greeting, which is not provided: ` +
      "provide it to Consumer.layer (with the CLI: in the config file's `layer`)"
    expect(listen.stderr.at(-1)).toBe(`pgwatch: ${message}`)
    expect(listen.stderr.join("\n")).not.toMatch(/^\s+at /m)
    // Not retried as if it were the notification's fault: no dead letter, nothing handled.
    const status = await run(["status", "--json", ...config], { env })
    expect(JSON.parse(status.stdout).consumers).toEqual([expect.objectContaining({ id: "greeter", handled: 0, deadLetters: 0 })])
  })
})
