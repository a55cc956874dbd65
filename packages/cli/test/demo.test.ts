import { afterAll, describe, expect, it } from "@effect/vitest"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { migrationNames } from "../../../test-support/migrations.js"
import { databaseUrl, dbEnv, dropSchema, freshSchema, migratedSchema, run, withClient } from "./utils.js"

describe("pgwatch demo", () => {
  const schema = freshSchema()
  afterAll(() => Promise.all([dropSchema(schema), dropSchema("pgwatch_demo")]))

  it("runs the quick start on the configured database, and a second run replays what the first left", async () => {
    const cwd = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-demo-"))
    const args = ["demo", "--database-url", databaseUrl, "--schema", schema]
    const first = await run(args, { cwd })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain(`Migrated: ${migrationNames.join(", ")}.`)
    expect(first.stdout).toMatch(/\[auditor\] replay log #\d+\s+UPDATE demo_orders/)
    expect(first.stdout.match(/\[auditor\] replay/g)).toHaveLength(3)
    expect(first.stdout).toMatch(/Demo finished in \d+\.\ds\./)
    expect(NodeFs.existsSync(NodePath.join(cwd, ".pgwatch"))).toBe(false)

    const second = await run(args, { cwd })
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toContain("First they play back what was written while they were not running")
    expect(second.stdout).toMatch(/\[printer\] replay log #\d+\s+INSERT demo_orders #4 .*scone/)
    expect(second.stdout).toMatch(/\[auditor\] replay log #\d+\s+INSERT demo_orders #4 .*scone/)
  })

  it("with a database configured, works in its own schema, never the app's, and --clean drops it", async () => {
    const cwd = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-demo-"))
    // The app's schema, with its own consumer: the demo must not touch it.
    const app = await migratedSchema()
    await withClient((c) => c.query(`INSERT INTO "${app}".consumer (id, channels, done) VALUES ('app_mailer', '{orders}', '1:1:')`))
    const env = dbEnv(app)
    const demo = await run(["demo"], { cwd, env })
    expect(demo.code, demo.stderr).toBe(0)
    expect(demo.stdout).toContain(`pgwatch schema "pgwatch_demo" (the demo's own)`)
    expect(demo.stdout).toContain("remove them with: npx pgwatch demo --clean")
    const status = JSON.parse((await run(["status", "--json"], { env })).stdout) as { consumers: Array<{ id: string }> }
    expect(status.consumers.map((c) => c.id)).toEqual(["app_mailer"])

    // Pointed at the app's schema, it refuses (and --clean too), naming the consumers it found.
    for (const args of [["demo", "--schema", app], ["demo", "--clean", "--schema", app]]) {
      const refused = await run(args, { cwd, env })
      expect(refused.code).toBe(2)
      expect(refused.stderr.trim()).toBe(
        `pgwatch: schema "${app}" holds consumers that are not the demo's (app_mailer): ` +
          "the demo runs in a schema of its own; leave out --schema (default pgwatch_demo) or pick another"
      )
    }

    const clean = await run(["demo", "--clean"], { cwd, env })
    expect(clean.code, clean.stderr).toBe(0)
    expect(clean.stdout).toContain(`Dropped the demo's schema "pgwatch_demo"`)
    const left = await withClient((c) => c.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgwatch_demo'`))
    expect(left.rowCount).toBe(0)
    expect((await withClient((c) => c.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [app]))).rowCount).toBe(1)
  })
})
