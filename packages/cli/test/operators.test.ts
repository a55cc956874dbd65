import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import { BIN, dbEnv, migratedSchema, PROJECT, run, Running, start, withClient } from "./utils.js"

/** util-linux `script`, to run the command on a pseudo-terminal. */
const hasScript = spawnSync("script", ["--version"]).status === 0

interface StatusJson {
  readonly consumers: ReadonlyArray<{
    readonly id: string
    readonly state: string
    readonly runningOn: { readonly host: string; readonly pid: number; readonly backendPid: number | null } | null
    readonly currentError: { readonly logId: string; readonly attempt: number; readonly error: string } | null
  }>
}

/** `status --json`, run again until `ready` holds (each run is a fresh process: no sleeping needed). */
const statusUntil = async (env: Record<string, string>, ready: (status: StatusJson) => boolean, what: string) => {
  for (let i = 0; i < 30; i++) {
    const result = await run(["status", "--json"], { env })
    expect(result.code, result.stderr).toBe(0)
    const status = JSON.parse(result.stdout) as StatusJson
    if (ready(status)) return status
  }
  throw new Error(`status never showed ${what}`)
}

const attempts = (lines: ReadonlyArray<string>, id: number) => lines.filter((l) => l === `attempted auditor ${id}`).length

describe.concurrent("what operators see and do", () => {
  it("status shows a retrying consumer's error and attempt, and a killed process as running?", async () => {
    const schema = await migratedSchema()
    const env = dbEnv(schema)
    const listen = start(["listen", "--consumers", "auditor"], { env: { ...env, PGWATCH_RETRY_BASE_DELAY: "300 millis" } })
    await listen.line(/^pgwatch: listening with 1 consumer/, "stderr")
    const running = await statusUntil(env, (s) => s.consumers[0]?.runningOn?.backendPid != null, "the listen connection")
    expect(running.consumers[0]).toMatchObject({ state: "running", runningOn: { pid: listen.child.pid }, currentError: null })

    const id = Number((await run(["notify", "audit", `{"fail": "retryable"}`], { env })).stdout.trim())
    await listen.until(() => attempts(listen.stdout, id) >= 2, "a second attempt")
    const retrying = await statusUntil(env, (s) => (s.consumers[0]?.currentError?.attempt ?? 0) >= 2, "the retry")
    expect(retrying.consumers[0]!.currentError).toMatchObject({ logId: String(id), error: `failed ${id}, worth another try` })
    const human = await run(["status"], { env })
    expect(human.stdout).toMatch(new RegExp(`^auditor\\s+running on \\S+:${listen.child.pid} since .*\\s(\\d+)\\s+retrying #${id} for \\d+s: failed ${id}, worth another try$`, "m"))

    // Killed: nothing cleans up, but the session it held is gone, so status stops believing it.
    await listen.stop("SIGKILL")
    const killed = await statusUntil(env, (s) => s.consumers[0]?.state === "unknown", "the killed process")
    expect(killed.consumers[0]!.runningOn).toMatchObject({ pid: listen.child.pid })
    const table = await run(["status"], { env })
    expect(table.stdout).toMatch(new RegExp(`^auditor\\s+running\\? \\(\\S+:${listen.child.pid}, its session is gone: died or reconnecting\\)`, "m"))
  })

  it("listen takes its settings from PGWATCH_* variables: PGWATCH_MAX_RETRIES=0 dead-letters after one attempt", async () => {
    const schema = await migratedSchema()
    const env = dbEnv(schema)
    const listen = start(["listen", "--consumers", "auditor"], { env: { ...env, PGWATCH_MAX_RETRIES: "0" } })
    await listen.line(/^pgwatch: listening with 1 consumer/, "stderr")
    const id = Number((await run(["notify", "audit", `{"fail": "retryable"}`], { env })).stdout.trim())
    await listen.line(new RegExp(`auditor dead-lettered notification ${id} \\(retries-exhausted\\)`), "stderr")
    expect(attempts(listen.stdout, id)).toBe(1)
    const failures = JSON.parse((await run(["failures", "--json"], { env })).stdout)
    expect(failures).toEqual([expect.objectContaining({ logId: String(id), reason: "retries-exhausted", attempts: 1 })])
    expect((await listen.stop()).code).toBe(0)
  })

  it("failures discard and consumers remove free what a poison row held from cleanup", async () => {
    const schema = await migratedSchema()
    const env = dbEnv(schema)
    const ids = await withClient(async (c) => {
      const rows = await c.query<{ id: string }>(
        `SELECT "${schema}".smart_notify('orders', jsonb_build_object('n', i))::text AS id FROM generate_series(1, 3) AS i`
      )
      await c.query(`UPDATE "${schema}".notification_log SET created_at = now() - interval '30 days'`)
      await c.query(`INSERT INTO "${schema}".consumer (id, channels, done) VALUES ('mailer', '{orders}', pg_current_snapshot()),
                                                                       ('old_report', '{orders}', pg_current_snapshot())`)
      for (const id of rows.rows.map((r) => r.id)) {
        await c.query(`INSERT INTO "${schema}".dead_letter (consumer_id, log_id, reason, error, attempts)
                       VALUES ('mailer', $1, 'permanent', 'poison', 1), ('old_report', $1, 'permanent', 'poison', 1)`, [id])
      }
      return rows.rows.map((r) => r.id)
    })
    const cleanup = async () => (await run(["cleanup", "--days", "7", "--dry-run"], { env })).stdout

    expect(await cleanup()).toContain("kept 3 older one(s)")
    const usage = await run(["failures", "discard", "mailer"], { env })
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain("say which dead letters of mailer to discard: log ids, or --all")
    const unknown = await run(["failures", "discard", "mailer", ids[0]!, "999999"], { env })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain(`no dead letter with log id 999999 for consumer "mailer"; nothing was discarded`)
    const one = await run(["failures", "discard", "mailer", ids[0]!], { env })
    expect(one.code, one.stderr).toBe(0)
    expect(one.stdout).toContain(`discarded 1 dead letter(s) of mailer: ${ids[0]}`)
    const rest = await run(["failures", "discard", "mailer", "--all"], { env })
    expect(rest.stdout).toContain(`discarded 2 dead letter(s) of mailer: ${ids[1]}, ${ids[2]}`)
    // old_report still holds them.
    expect(await cleanup()).toContain("kept 3 older one(s)")

    // Not on a terminal: removing needs --yes, and nothing is removed without it.
    const unconfirmed = await run(["consumers", "remove", "old_report"], { env })
    expect(unconfirmed.code).toBe(2)
    expect(unconfirmed.stderr.trim()).toBe(
      "pgwatch: Remove consumer old_report and its position, 3 dead letter(s) and 0 queued redelivery(ies)? " +
        "Not on a terminal, so nobody can confirm: pass --yes"
    )
    const removed = await run(["consumers", "remove", "old_report", "--yes"], { env })
    expect(removed.code, removed.stderr).toBe(0)
    expect(removed.stdout).toContain("removed consumer old_report with 3 dead letter(s) and 0 queued redelivery(ies)")
    expect(await cleanup()).toContain("would delete 3 notification(s) older than 7 day(s)")
    const status = JSON.parse((await run(["status", "--json"], { env })).stdout) as StatusJson
    expect(status.consumers.map((c) => c.id)).toEqual(["mailer"])
    const again = await run(["consumers", "remove", "old_report", "--yes"], { env })
    expect(again.code).toBe(1)
    expect(again.stderr).toContain(`unknown consumer "old_report"; registered consumers: mailer`)
  })

  it.skipIf(!hasScript)("consumers remove asks on a terminal, and removes on yes", async () => {
    const schema = await migratedSchema()
    const env = dbEnv(schema)
    await withClient((c) => c.query(`INSERT INTO "${schema}".consumer (id, channels, done) VALUES ('gone', '{orders}', '1:1:')`))
    const child = spawn("script", ["-qec", `"${process.execPath}" "${BIN}" consumers remove gone`, "/dev/null"], {
      cwd: PROJECT,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    // The question has no newline: watch the raw output.
    let screen = ""
    child.stdout.on("data", (chunk: Buffer | string) => {
      screen += String(chunk)
    })
    const onTerminal = new Running(child)
    await onTerminal.until(() => screen.includes("Remove consumer gone and its position, 0 dead letter(s)"), "the question")
    child.stdin.write("y")
    await onTerminal.until(() => screen.includes("yes"), "the answer")
    child.stdin.write("\r")
    await onTerminal.until(() => screen.includes("removed consumer gone"), "the removal")
    const status = JSON.parse((await run(["status", "--json"], { env })).stdout) as StatusJson
    expect(status.consumers).toEqual([])
    child.stdin.end()
    await onTerminal.exited
  })
})
