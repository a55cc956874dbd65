import { afterAll, describe, expect, it } from "@effect/vitest"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { migrationNames } from "../../../test-support/migrations.js"
import { databaseUrl, dropSchema, freshSchema, run } from "./utils.js"

describe("pgwatch demo", () => {
  const schema = freshSchema()
  afterAll(() => dropSchema(schema))

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
})
