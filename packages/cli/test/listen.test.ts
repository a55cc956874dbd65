import { afterAll, describe, expect, it } from "@effect/vitest"
import { dbEnv, dropSchema, handled, migratedSchema, run, start, withClient } from "./utils.js"

describe.concurrent("pgwatch listen", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("runs every consumer concurrently; a notify from another process reaches each one listening on its channel", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    const listen = start(["listen", "--timeout", "1"], { env })
    await listen.line(/^pgwatch: listening with 3 consumers .*schema cli_/, "stderr")
    for (const id of ["order_mailer", "order_stats", "auditor"]) {
      await listen.line(new RegExp(`^  ${id} \\(app `), "stderr")
    }

    const sent = await run(["notify", "orders", `{"n": 1}`], { env })
    expect(sent.code, sent.stderr).toBe(0)
    const id = Number(sent.stdout.trim())
    await listen.until(() => handled(listen.stdout).filter((h) => h.id === id).length === 3, "three consumers to handle it")
    expect(handled(listen.stdout).map((h) => h.consumer).sort()).toEqual(["auditor", "order_mailer", "order_stats"])

    // A channel only one consumer listens on.
    const refund = Number((await run(["notify", "refunds", "{}"], { env })).stdout.trim())
    await listen.until(() => handled(listen.stdout).some((h) => h.id === refund), "order_stats to handle the refund")
    expect(handled(listen.stdout).filter((h) => h.id === refund).map((h) => h.consumer)).toEqual(["order_stats"])

    const stopped = await listen.stop("SIGINT")
    expect(stopped.code).toBe(0)
    expect(stopped.stderr).toContain("pgwatch: stopped; progress saved")
  })

  it("SIGTERM during playback saves progress: a restart does not redo finished work", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    const total = 600
    await withClient((client) =>
      client.query(
        `SELECT "${schema}".smart_notify_many('orders', array_agg(jsonb_build_object('n', i, 'sleep', 5))) FROM generate_series(1, $1) AS i`,
        [total]
      )
    )

    const first = start(["listen", "--consumers", "order_mailer", "--max-batch-size", "100"], { env })
    await first.line(/^pgwatch: order_mailer is playing back \d+ notifications$/, "stderr")
    await first.until(() => handled(first.stdout).length >= 100, "100 handled")
    const signalledAt = Date.now()
    const stopped = await first.stop("SIGTERM")
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(Date.now() - signalledAt).toBeLessThan(8_000)
    expect(stopped.stderr).toContain("pgwatch: SIGTERM: stopping")
    const before = handled(first.stdout).map((h) => h.id)
    expect(before.length).toBeLessThan(total)
    expect(handled(first.stdout).every((h) => h.replay)).toBe(true)

    const saved = await withClient((client) =>
      client.query<{ handled: string }>(`SELECT handled::text FROM "${schema}".consumer WHERE id = 'order_mailer'`)
    )
    expect(Number(saved.rows[0]!.handled)).toBe(before.length)

    const second = start(["listen", "--consumers", "order_mailer"], { env })
    await second.until(() => new Set([...before, ...handled(second.stdout).map((h) => h.id)]).size === total, "the rest")
    await second.line(/^pgwatch: order_mailer caught up: played back \d+ in /, "stderr")
    const after = handled(second.stdout).map((h) => h.id)
    expect(after.filter((id) => before.includes(id))).toEqual([])
    expect(after).toHaveLength(total - before.length)
    expect((await second.stop()).code).toBe(0)
  })

  it("a second signal exits at once, abandoning the in-flight handler", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    const listen = start(["listen", "--consumers", "order_mailer", "--shutdown-timeout", "60"], { env })
    await listen.line(/^pgwatch: listening with 1 consumer /, "stderr")
    await run(["notify", "orders", `{"sleep": 60000}`], { env })
    // The handler is now sleeping; the first signal waits for it, the second does not.
    await listen.line(/^sleeping order_mailer \d+$/)
    listen.child.kill("SIGTERM")
    await listen.line(/SIGTERM: stopping/, "stderr")
    const signalledAt = Date.now()
    listen.child.kill("SIGTERM")
    const exited = await listen.exited
    expect(Date.now() - signalledAt).toBeLessThan(3_000)
    expect(exited.code).toBe(143)
    expect(exited.stderr).toContain("SIGTERM again: exiting now")
  })

  it("--skip-playback drops the backlog and handles only new notifications", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    await run(["notify", "audit", `{"old": true}`], { env })
    const listen = start(["listen", "--consumers", "auditor", "--skip-playback"], { env })
    await listen.line(/^pgwatch: listening with 1 consumer .*playback skipped/, "stderr")
    const id = Number((await run(["notify", "audit", `{"new": true}`], { env })).stdout.trim())
    await listen.until(() => handled(listen.stdout).some((h) => h.id === id), "the new notification")
    expect(handled(listen.stdout).map((h) => h.id)).toEqual([id])
    expect((await listen.stop()).code).toBe(0)
  })
})
