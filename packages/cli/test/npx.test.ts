import { afterAll, describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { childEnv, dbEnv, dropSchema, migratedSchema, PROJECT, Running } from "./utils.js"

const ROOT = fileURLToPath(new URL("../../..", import.meta.url))

/** Processes whose command line mentions `text`, other than the one asking. */
const processesWith = (text: string) => {
  try {
    return execFileSync("pgrep", ["-af", text], { encoding: "utf8" }).split("\n").filter((line) => line !== "")
  } catch {
    return [] // pgrep exits 1 when nothing matches
  }
}

describe("the README's form under a process manager", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("`npx pgwatch listen` stops gracefully on SIGTERM and leaves no process behind", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    // npx as in a project that depends on @pgwatch/cli: the repository root has it in node_modules/.bin.
    const child = spawn("npx", ["pgwatch", "listen", "--config", NodePath.join(PROJECT, "pgwatch.config.ts"), "--schema", schema], {
      cwd: ROOT,
      env: childEnv(dbEnv(schema)),
      stdio: ["ignore", "pipe", "pipe"]
    })
    const listen = new Running(child)
    await listen.line(/^pgwatch: listening with 3 consumers/, "stderr")
    expect(processesWith(schema).some((line) => /node .*pgwatch listen/.test(line))).toBe(true)

    child.kill("SIGTERM")
    // Resolves once every holder of the output pipes has exited: npm, its shell and pgwatch.
    const result = await Promise.race([
      listen.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running: ${processesWith(schema).join("; ")}`)), 20_000))
    ])
    // npm re-raises the signal on itself, as a process manager expects.
    expect(result.signal ?? result.code).toSatisfy((status) => status === "SIGTERM" || status === 143)
    expect(result.stderr).toContain("pgwatch: SIGTERM: stopping")
    expect(result.stderr).toContain("pgwatch: stopped; progress saved")
    expect(processesWith(schema)).toEqual([])
  })
})
