import { afterAll, describe, expect, it } from "@effect/vitest"
import { migrationNames } from "../../../test-support/migrations.js"
import { dbEnv, dropSchema, freshSchema, handled, migratedSchema, run, start, withClient } from "./utils.js"

const ok = (result: { code: number | null; stderr: string }) => expect(result.code, result.stderr).toBe(0)

describe.concurrent("operating pgwatch", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("migrate: --dry-run shows the SQL and changes nothing; then applies; then is up to date", async () => {
    const schema = freshSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    const dry = await run(["migrate", "--dry-run"], { env })
    ok(dry)
    expect(dry.stdout).toContain(`-- would apply ${migrationNames.length} migration(s) to schema ${schema}`)
    expect(dry.stdout).toContain(`CREATE TABLE "${schema}".notification_log`)
    const exists = () =>
      withClient((c) => c.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]).then((r) => r.rowCount === 1))
    expect(await exists()).toBe(false)
    const applied = await run(["migrate", "--schema", schema], { env: { PGWATCH_DATABASE_URL: env.PGWATCH_DATABASE_URL } })
    ok(applied)
    expect(applied.stdout).toMatch(new RegExp(`^applied ${migrationNames.join(", ")} to schema ${schema} `))
    expect(await exists()).toBe(true)
    expect((await run(["migrate"], { env })).stdout).toContain(`schema ${schema} is up to date`)
  })

  it("cleanup: --dry-run counts, a real run deletes, what a consumer still needs stays unless --force", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    await withClient(async (c) => {
      await c.query(`SELECT "${schema}".smart_notify_many('orders', ARRAY['{"n":1}','{"n":2}','{"n":3}']::jsonb[])`)
      await c.query(`SELECT "${schema}".smart_notify_many('refunds', ARRAY['{"n":4}','{"n":5}']::jsonb[])`)
      await c.query(`UPDATE "${schema}".notification_log SET created_at = now() - interval '10 days'`)
      await c.query(`SELECT "${schema}".smart_notify('orders', '{"n":6}')`)
      // A registered consumer of refunds that has handled nothing yet.
      await c.query(`INSERT INTO "${schema}".consumer (id, channels, done) VALUES ('lazy', '{refunds}', '1:1:')`)
    })
    const count = () => withClient((c) => c.query(`SELECT count(*)::int AS n FROM "${schema}".notification_log`).then((r) => r.rows[0].n))

    const dry = await run(["cleanup", "--days", "7", "--dry-run"], { env })
    ok(dry)
    expect(dry.stdout).toContain("would delete 3 notification(s) older than 7 day(s)")
    expect(dry.stdout).toContain("kept 2 older one(s) that consumers still need")
    expect(await count()).toBe(6)

    const real = await run(["cleanup", "--days", "7"], { env })
    ok(real)
    expect(real.stdout).toContain("deleted 3 notification(s) older than 7 day(s)")
    expect(await count()).toBe(3)

    const forced = await run(["cleanup", "--days", "7", "--force"], { env })
    expect(forced.stdout).toContain("deleted 2 notification(s)")
    expect(await count()).toBe(1)
  })

  it("status, failures and replay round trip with a running listen", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    const good = Number((await run(["notify", "audit", `{"n": 1}`], { env })).stdout.trim())
    const listen = start(["listen", "--consumers", "auditor", "--timeout", "0.3"], { env })
    await listen.until(() => handled(listen.stdout).some((h) => h.id === good), "the first notification")

    const bad = Number((await run(["notify", "audit", `{"fail": "permanent"}`], { env })).stdout.trim())
    const deadLettered = new RegExp(`auditor dead-lettered notification ${bad} \\(permanent\\)`)
    await listen.line(deadLettered, "stderr")

    const failures = await run(["failures", "--json"], { env })
    ok(failures)
    expect(JSON.parse(failures.stdout)).toEqual([
      expect.objectContaining({ consumerId: "auditor", logId: String(bad), channel: "audit", reason: "permanent", attempts: 1 })
    ])
    const table = await run(["failures", "--consumer", "auditor"], { env })
    expect(table.stdout).toMatch(new RegExp(`^${bad}\\s+auditor\\s+audit\\s+permanent\\s+1\\s+\\d+s ago\\s+refused ${bad} on purpose$`, "m"))

    // A listener stalled in a transaction holds ~80 kB in the NOTIFY queue: status reports it.
    const status = await withClient(async (stalled) => {
      const channel = `stalled_${Math.random().toString(36).slice(2, 10)}`
      await stalled.query(`LISTEN ${channel}`)
      await stalled.query("BEGIN")
      await withClient((sender) => sender.query(`SELECT pg_notify($1, repeat('x', 4000) || i) FROM generate_series(1, 20) AS i`, [channel]))
      const result = await run(["status", "--json"], { env })
      await stalled.query("COMMIT")
      return result
    })
    ok(status)
    const parsed = JSON.parse(status.stdout)
    expect(parsed.notifyQueueUsage).toBeGreaterThan(0)
    expect(parsed.notifyQueueUsage).toBeLessThan(0.01)
    expect(parsed.consumers).toEqual([
      expect.objectContaining({
        id: "auditor",
        channels: ["orders", "audit"],
        state: "running",
        runningOn: expect.objectContaining({ host: expect.any(String), pid: listen.child.pid }),
        currentError: null,
        handled: 1,
        deadLettered: 1,
        pending: 0,
        deadLetters: 1,
        lastLogId: String(bad)
      })
    ])
    expect(parsed.consumers[0].lastError).toContain("on purpose")
    expect(parsed.consumers[0].byChannel).toEqual([
      expect.objectContaining({ channel: "orders", pending: 0, deadLetters: 0 }),
      expect.objectContaining({ channel: "audit", pending: 0, deadLetters: 1 })
    ])
    const human = await run(["status"], { env })
    expect(human.stdout).toMatch(/^CONSUMER\s+STATE\s+CHANNEL\s+LAST ID\s+LAST SAVED\s+HANDLED\s+PENDING\s+LAG\s+DEAD LETTERS\s+QUEUED\s+DELIVERY\s+ATTEMPT\s+ERROR$/m)
    expect(human.stdout).toMatch(new RegExp(`^auditor\\s+running on \\S+:${listen.child.pid} since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+orders\\s`, "m"))
    expect(human.stdout).toContain(`last: refused ${bad} on purpose`)
    expect(human.stdout).toMatch(/^NOTIFY queue usage: \d/m)

    // Replay a handled notification: the running consumer gets it again, as a replay.
    const replay = await run(["replay", "--consumer", "auditor", "--ids", String(good)], { env })
    ok(replay)
    expect(replay.stdout).toContain(`queued 1 notification(s) for auditor to handle again: ${good}`)
    await listen.until(() => handled(listen.stdout).some((h) => h.id === good && h.replay), "the replay")

    // Re-drive the dead letter: it runs again and, still refused, is dead-lettered again.
    const redrive = await run(["failures", "redrive", "--ids", String(bad)], { env })
    ok(redrive)
    expect(redrive.stdout).toContain(`re-driving 1 dead letter(s): auditor #${bad}`)
    await listen.until(() => listen.stderr.filter((l) => deadLettered.test(l)).length === 2, "the second dead-lettering")
    expect(JSON.parse((await run(["failures", "--json"], { env })).stdout)).toHaveLength(1)

    // --since: everything on its channels of the last hour.
    const since = await run(["replay", "--consumer", "auditor", "--since", "1h"], { env })
    expect(since.stdout).toContain("queued 2 notification(s) for auditor")
    const missing = await run(["replay", "--consumer", "auditor", "--ids", "999999"], { env })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(`log id(s) 999999 not found on the channels of consumer "auditor"`)

    expect((await listen.stop()).code).toBe(0)
    const nothing = await run(["failures", "redrive", "--consumer", "auditor", "--ids", String(good)], { env })
    expect(nothing.stderr).toContain(`no dead letter with log id ${good} for consumer "auditor"`)
    expect(JSON.parse((await run(["status", "--json"], { env })).stdout).consumers[0]).toMatchObject({ state: "stopped", runningOn: null })
  })

  it("triggers add, list and remove; a change notifies its channel", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    await withClient((c) => c.query(`CREATE TABLE "${schema}".items (id serial PRIMARY KEY, name text)`))
    const table = `${schema}.items`
    const added = await run(["triggers", "add", table, "--channel", "items"], { env })
    ok(added)
    expect(added.stdout).toContain(`trigger pgwatch_items on ${table}: changes notify channel items`)
    ok(await run(["triggers", "add", table], { env }))
    const listed = await run(["triggers", "list", "--json"], { env })
    expect(JSON.parse(listed.stdout)).toEqual([
      { table, trigger: "pgwatch_data_change", channel: "data_change" },
      { table, trigger: "pgwatch_items", channel: "items" }
    ])
    await withClient((c) => c.query(`INSERT INTO "${schema}".items (name) VALUES ('lamp')`))
    const logged = await withClient((c) =>
      c.query(`SELECT channel, payload->>'action' AS action FROM "${schema}".notification_log ORDER BY channel`)
    )
    expect(logged.rows).toEqual([{ channel: "data_change", action: "INSERT" }, { channel: "items", action: "INSERT" }])

    expect((await run(["triggers", "remove", table, "--channel", "items"], { env })).stdout).toContain("removed the items trigger")
    expect((await run(["triggers", "list", table], { env })).stdout).toMatch(/^TABLE\s+CHANNEL\s+TRIGGER\n\S+\s+data_change\s+pgwatch_data_change$/)
    const unknown = await run(["triggers", "add", `${schema}.nope`], { env })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr.trim()).toBe(`pgwatch: table "${schema}.nope" does not exist (write it as PostgreSQL would: schema.table, "Quoted" for mixed case)`)
    const badChannel = await run(["triggers", "add", table, "--channel", "no-dash"], { env })
    expect(badChannel.stderr).toContain(`invalid channel name "no-dash"`)
  })
})
