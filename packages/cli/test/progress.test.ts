import { afterAll, describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { dbEnv, dropSchema, handled, migratedSchema, start, withClient } from "./utils.js"

describe("pgwatch listen: progress", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("Ctrl-C in the middle of a page stops between notifications, saves, and the restart redoes nothing", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    // One default page (1,000 rows) whose first 600 take 20 ms each: 12 s, longer than the
    // shutdown time-out, so stopping must not wait for the page to end.
    const total = 3000
    const slow = 600
    const shutdownSeconds = 5
    await withClient((client) =>
      client.query(
        `SELECT "${schema}".smart_notify_many('orders',
           array_agg(jsonb_build_object('n', i, 'sleep', CASE WHEN i <= $2 THEN 20 ELSE 0 END) ORDER BY i))
           FROM generate_series(1, $1) AS i`,
        [total, slow]
      )
    )

    const args = ["listen", "--consumers", "order_mailer", "--shutdown-timeout", String(shutdownSeconds)]
    const first = start(args, { env })
    await first.until(() => handled(first.stdout).length >= 150, "150 handled")
    const signalledAt = Date.now()
    const stopped = await first.stop("SIGINT")
    const stopMs = Date.now() - signalledAt
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(stopped.stderr).not.toContain("abandoning")
    expect(stopMs).toBeLessThan(shutdownSeconds * 1000)
    const before = handled(first.stdout).map((h) => h.id)
    expect(before.length).toBeLessThan(slow)

    // Everything handled is saved: no more, no less.
    const saved = await withClient((client) =>
      client.query<{ handled: string }>(`SELECT handled::text FROM "${schema}".consumer WHERE id = 'order_mailer'`)
    )
    expect(Number(saved.rows[0]!.handled)).toBe(before.length)

    const second = start(args, { env })
    await second.line(/^pgwatch: order_mailer caught up: played back [\d,]+ in /, "stderr", 110_000)
    const after = handled(second.stdout).map((h) => h.id)
    expect((await second.stop("SIGINT")).code).toBe(0)

    // Each notification handled exactly once across both runs, in log order.
    const all = [...before, ...after]
    expect(all).toHaveLength(total)
    expect(new Set(all).size).toBe(total)
    expect(all).toEqual([...all].sort((a, b) => a - b))
  })

  it("a backlog of large payloads is read a few at a time: it fits in a small heap", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    // 40 payloads of 4 MB (random, so stored uncompressed): 160 MB in one page before pages
    // were bounded by bytes; within the default 16 MiB budget, four at a time.
    const total = 40
    await withClient(async (client) => {
      for (let i = 0; i < total; i++) {
        await client.query(`SELECT "${schema}".smart_notify('orders', to_jsonb($1::text))`, [randomBytes(2_000_000).toString("hex")])
      }
    })
    // 160 MB of heap: one unbounded page needs more than twice that (the rows' text, then their
    // parsed copies); a 16 MiB page with its copies and the command's own ~60 MB fits with room
    // to spare (96 MB ran out once under CI, during a page's parse).
    const listen = start(["listen", "--consumers", "order_mailer"], {
      env: { ...env, NODE_OPTIONS: "--max-old-space-size=160" }
    })
    await listen.line(/^pgwatch: order_mailer caught up: played back [\d,]+ in /, "stderr", 110_000)
    expect(handled(listen.stdout).map((h) => h.id)).toHaveLength(total)
    expect((await listen.stop("SIGINT")).code).toBe(0)
  })
})
