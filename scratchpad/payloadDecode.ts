/**
 * What reading payloads exactly costs a consumer: client CPU to decode 100k log rows, as jsonb
 * parsed by `pg` (JSON.parse, which rounds big numbers) and as `payload::text` parsed by
 * `Json.parse` (what the reader does). `bench` rows are the benchmark's ~200-byte payloads;
 * `bigid` rows are table-change payloads with ids past 2^53, which need the exact parser.
 *
 *   npx tsx --conditions=source scratchpad/payloadDecode.ts [bench|bigid]
 */
import * as Pg from "pg"
import { Json } from "@pgwatch/core"
const client = new Pg.Client({ connectionString: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test" })
await client.connect()
const schema = `drain_${Math.random().toString(36).slice(2, 8)}`
try {
  await client.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.log (id bigint, payload jsonb)`)
  const kind = process.argv[2] ?? "bench"
  const payload = kind === "bench"
    ? `jsonb_build_object('seq', g, 'sentAt', 123456789012 + g, 'body', repeat('x', 160))`
    : `jsonb_build_object('table', 'orders', 'action', 'UPDATE', 'id', 1234567890123456789 + g, 'new_data', jsonb_build_object('id', 1234567890123456789 + g, 'total', 123.45, 'at', now()))`
  await client.query(`INSERT INTO ${schema}.log SELECT g, ${payload} FROM generate_series(1, 100000) g`)
  const cpu = async (f: () => Promise<number>) => {
    const start = process.cpuUsage(); const t = performance.now()
    const n = await f()
    const used = process.cpuUsage(start)
    return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - t, n }
  }
  const before = () => client.query(`SELECT id::text, payload FROM ${schema}.log`).then((r) => r.rows.length)
  const after = () => client.query(`SELECT id::text, payload::text AS payload FROM ${schema}.log`).then((r) => r.rows.map((row) => Json.parse(row.payload)).length)
  const results: Record<string, Array<number>> = { before: [], after: [] }
  for (let round = 0; round < 6; round++) {
    for (const [name, f] of [["before", before], ["after", after]] as const) {
      const r = await cpu(f)
      results[name]!.push(r.cpuMs)
    }
  }
  const med = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(kind, "client CPU ms per 100k rows: before (jsonb via pg) min", Math.min(...results.before!).toFixed(0), "median", med(results.before!).toFixed(0),
    "| after (text + Json.parse) min", Math.min(...results.after!).toFixed(0), "median", med(results.after!).toFixed(0))
} finally {
  await client.query(`DROP SCHEMA ${schema} CASCADE`)
  await client.end()
}
