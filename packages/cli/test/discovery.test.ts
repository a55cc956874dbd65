import { describe, expect, it } from "@effect/vitest"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FIXTURES, PROJECT, run } from "./utils.js"

const broken = (name: string) => NodePath.join(FIXTURES, "broken", name)

/** An error is one line on stderr, no stack trace, exit 1. */
const expectOneLineError = (result: { code: number | null; stderr: string }, ...parts: Array<string | RegExp>) => {
  expect(result.code).toBe(1)
  const lines = result.stderr.trim().split("\n")
  expect(lines, result.stderr).toHaveLength(1)
  expect(result.stderr).not.toMatch(/^\s+at /m)
  for (const part of parts) expect(lines[0]).toMatch(part)
}

describe.concurrent("discovery (pgwatch listen --list-consumers)", () => {
  it("finds every consumer of every app, with app and channels, each once", async () => {
    const result = await run(["listen", "--list-consumers"])
    expect(result.code, result.stderr).toBe(0)
    const rows = result.stdout.trim().split("\n").map((line) => line.split(/\s{2,}/))
    expect(rows).toEqual([
      ["CONSUMER", "APP", "CHANNELS", "MODULE"],
      ["order_mailer", "orders", "orders", "./src/orders.ts (orderMailer)"],
      ["order_stats", "orders", "orders,refunds", "./src/orders.ts (orderStats)"],
      ["auditor", "audit", "orders,audit", "audit (import function) (consumers[0])"]
    ])
    expect(result.stderr).toContain(`3 consumer(s) from ${NodePath.join(PROJECT, "pgwatch.config.ts")}`)
  })

  it("prints JSON, and applies --apps, --consumers and --exclude-consumers (repeated or comma-separated)", async () => {
    const ids = async (...args: Array<string>) => {
      const result = await run(["listen", "--list-consumers", "--json", ...args])
      expect(result.code, result.stderr).toBe(0)
      return (JSON.parse(result.stdout) as Array<{ id: string }>).map((c) => c.id)
    }
    const all = JSON.parse((await run(["listen", "--list-consumers", "--json"])).stdout)
    expect(all).toContainEqual({
      id: "order_stats",
      app: "orders",
      channels: ["orders", "refunds"],
      module: "./src/orders.ts",
      export: "orderStats"
    })
    expect(await ids("--apps", "audit")).toEqual(["auditor"])
    expect(await ids("--apps", "orders,audit", "--exclude-consumers", "order_stats")).toEqual(["order_mailer", "auditor"])
    expect(await ids("--consumers", "auditor", "--consumers", "order_mailer")).toEqual(["order_mailer", "auditor"])
  })

  it("runs from the TypeScript sources as well as from the build", async () => {
    const result = await run(["listen", "--list-consumers", "--json", "--apps", "audit"], { env: { PGWATCH_CLI_SOURCE: "1" } })
    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual([expect.objectContaining({ id: "auditor" })])
  })

  it("finds the config file in a parent folder, and takes --config", async () => {
    const nested = await run(["listen", "--list-consumers", "--json"], { cwd: NodePath.join(PROJECT, "src") })
    expect(nested.code, nested.stderr).toBe(0)
    expect(JSON.parse(nested.stdout)).toHaveLength(3)
    const elsewhere = await run(["listen", "--list-consumers", "--json", "--config", NodePath.join(PROJECT, "pgwatch.config.ts")], {
      cwd: NodeOs.tmpdir()
    })
    expect(JSON.parse(elsewhere.stdout)).toHaveLength(3)
  })

  it("rejects unknown apps and consumers, naming the known ones", async () => {
    expectOneLineError(await run(["listen", "--apps", "orders,shipping"]), `unknown app "shipping"; known apps: orders, audit`)
    expectOneLineError(
      await run(["listen", "--list-consumers", "--consumers", "order_mailer,nobody"]),
      `unknown consumer "nobody"; known consumers: order_mailer, order_stats, auditor`
    )
    expectOneLineError(await run(["listen", "--exclude-consumers", "ghost"]), `unknown consumer "ghost"`)
    expectOneLineError(
      await run(["listen", "--consumers", "auditor", "--exclude-consumers", "auditor"]),
      "no consumer left to run"
    )
  })

  it("rejects two consumers with one id, naming both", async () => {
    expectOneLineError(
      await run(["listen", "--list-consumers", "--config", broken("duplicate.config.ts")]),
      `consumer id "order_mailer" is declared twice`,
      `app "orders" (../project/src/orders.ts, export orderMailer)`,
      `app "copycat" (./duplicate.ts, export mailerAgain)`
    )
  })

  it("says when there is no config file, or it is missing, broken, of the wrong shape", async () => {
    const empty = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-noconfig-"))
    expectOneLineError(await run(["listen"], { cwd: empty }), /^pgwatch: no pgwatch\.config\.ts, .* in .*pgwatch-noconfig-.* or its parent folders: create one/)
    expectOneLineError(await run(["listen", "--config", "nope.config.ts"]), `config file ${NodePath.join(PROJECT, "nope.config.ts")} does not exist`)
    expectOneLineError(await run(["listen", "--config", broken("syntax.config.mjs")]), "cannot load config file", /syntax\.config\.mjs: .*(Unexpected token|SyntaxError)/)
    expectOneLineError(await run(["listen", "--config", broken("shape.config.ts")]), "shape.config.ts is invalid", /apps/)
    expectOneLineError(await run(["listen", "--config", broken("no-default.config.mjs")]), "has no default export")
    // Commands that do not need the apps still refuse a broken config file rather than ignore it.
    expectOneLineError(await run(["status", "--config", broken("syntax.config.mjs")]), "cannot load config file")
  })

  it("says which app's module failed to import, and why", async () => {
    expectOneLineError(
      await run(["listen", "--list-consumers", "--config", broken("import-fails.config.ts")]),
      `app "exploding": cannot import ./throws.ts`,
      "MISSING_API_KEY is not set"
    )
    expectOneLineError(
      await run(["listen", "--list-consumers", "--config", broken("missing-module.config.ts")]),
      `app "gone": cannot import ./does-not-exist.ts`,
      /Cannot find module|ERR_MODULE_NOT_FOUND/
    )
    expectOneLineError(
      await run(["listen", "--list-consumers", "--config", broken("no-consumers.config.ts")]),
      `app "empty": ./no-consumers.ts exports no consumer`
    )
  })
})
