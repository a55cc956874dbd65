import { afterAll, describe, expect, it } from "@effect/vitest"
import { dbEnv, dropSchema, migratedSchema, run, withClient } from "./utils.js"

const ok = (result: { code: number | null; stderr: string }) => expect(result.code, result.stderr).toBe(0)

describe("numbers in the command's input and JSON output", () => {
  const schemas: Array<string> = []
  afterAll(() => Promise.all(schemas.map(dropSchema)))

  it("failures --json and status --json print log ids past 2^53 exactly, as strings; notify stores big numbers exactly", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const env = dbEnv(schema)
    const log = `"${schema}".notification_log`
    await withClient((c) => c.query(`ALTER TABLE ${log} ALTER COLUMN id RESTART WITH 9007199254740993`))

    // Read back through the JSON the command was given: nothing rounded on the way in.
    const sent = await run(["notify", "orders", `{"id": 1234567890123456789, "amount": 12345678901234567.89}`], { env })
    ok(sent)
    expect(sent.stdout.trim()).toBe("9007199254740993")
    const stored = await withClient((c) => c.query(`SELECT payload::text AS p FROM ${log} WHERE id = 9007199254740993`))
    expect(stored.rows[0].p).toBe(`{"id": 1234567890123456789, "amount": 12345678901234567.89}`)

    await withClient(async (c) => {
      await c.query(
        `INSERT INTO "${schema}".consumer (id, channels, done, handled, last_log_id)
         VALUES ('auditor', '{orders}', '1:1:', 1, 9007199254740993)`
      )
      await c.query(
        `INSERT INTO "${schema}".dead_letter (consumer_id, log_id, reason, error, attempts)
         VALUES ('auditor', 9007199254740993, 'permanent', 'refused on purpose', 1)`
      )
    })

    const failures = await run(["failures", "--json"], { env })
    ok(failures)
    expect(failures.stdout).toContain(`"logId": "9007199254740993"`)
    expect(JSON.parse(failures.stdout)).toEqual([
      expect.objectContaining({
        consumerId: "auditor",
        logId: "9007199254740993",
        payload: { id: "1234567890123456789", amount: "12345678901234567.89" }
      })
    ])

    const status = await run(["status", "--json"], { env })
    ok(status)
    expect(JSON.parse(status.stdout).consumers).toEqual([
      expect.objectContaining({ id: "auditor", lastLogId: "9007199254740993", deadLetters: 1 })
    ])
  })
})
