/**
 * Multi-channel page reads, old against new, same run: a backlog of 100,000 rows spread over K
 * channels (1,000 transactions of 100 rows) drained page by page by one reader, with
 * read_batch_page (0005: one LIMIT per channel) and the reader pages.ts picks (0011's
 * read_page_<arity> merge for 2 to 512 channels), and the time of the first page.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx --conditions=source scratchpad/multiChannelPages.ts [rows=100000]
 */
import { PgClient } from "@effect/sql-pg"
import { Migrator } from "@pgwatch/core"
import { Effect, Redacted } from "effect"
import * as Pg from "pg"
import { readerFor } from "../packages/core/src/internal/pages.js"

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const total = Number(process.argv[2] ?? 100_000)
const schema = process.env.SCHEMA ?? `pages_bench_${process.pid}`
const ks = (process.env.KS ?? "1,10,100,500").split(",").map(Number)
const payload = JSON.stringify({ kind: "order.created", id: 12345, customer: "c-0042", total: 99.5, note: "x".repeat(100) })

const migrate = Migrator.migrate({ schema }).pipe(
  Effect.provide(PgClient.layer({ url: Redacted.make(url) })),
  Effect.scoped
)

const query = (fn: string) =>
  `SELECT page_batch AS batch, page_complete AS complete, log_id::text AS id, log_channel AS channel,
          log_payload::text AS payload, log_created_at AS created_at, log_xid::text AS xid
     FROM "${schema}".${fn}($1::text[], $2::pg_snapshot, $3::pg_snapshot, $4::xid8, $5::bigint, $6, $7::bigint)`

interface Row {
  batch: string
  complete: boolean
  id: string | null
  xid: string
  payload: string
}

/** Reads a whole batch from the start of the log; returns rows read and seconds. */
const drain = async (client: Pg.Client, fn: string, channels: ReadonlyArray<string>) => {
  let batch: string | null = null
  let afterXid = "0"
  let afterId = "0"
  let rows = 0
  const started = performance.now()
  for (;;) {
    const result: Pg.QueryResult<Row> = await client.query<Row>({
      name: `${fn}`,
      text: query(fn),
      values: [channels, "1:1:", batch, afterXid, afterId, 1000, 16 * 1024 * 1024]
    })
    const marker = result.rows.at(-1)!
    const found = result.rows.slice(0, -1)
    for (const row of found) JSON.parse(row.payload)
    rows += found.length
    if (marker.complete) break
    batch = marker.batch
    afterXid = found.at(-1)!.xid
    afterId = found.at(-1)!.id!
  }
  return { rows, seconds: (performance.now() - started) / 1000 }
}

const main = async () => {
  await Effect.runPromise(migrate)
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  try {
    console.log("K     function           rows    drain/s   first page (ms)")
    for (const k of ks) {
      const channels = Array.from({ length: k }, (_, i) => `c${k}_${i}`)
      await client.query(`TRUNCATE "${schema}".notification_log CASCADE`)
      for (let t = 0; t < 1000; t++) {
        const per = total / 1000
        await client.query(
          `INSERT INTO "${schema}".notification_log (channel, payload)
           SELECT ($1::text[])[1 + (($2::int * $3::int + i) % cardinality($1::text[]))], $4::jsonb FROM generate_series(0, $3::int - 1) i`,
          [channels, t, per, payload]
        )
      }
      await client.query(`VACUUM ANALYZE "${schema}".notification_log`)
      for (const fn of new Set(["read_batch_page", readerFor(k)])) {
        // Warm-up (prepares and caches the plans), then two measured drains.
        await drain(client, fn, channels)
        const first = performance.now()
        await client.query({ name: fn, text: query(fn), values: [channels, "1:1:", null, "0", "0", 1000, 16 * 1024 * 1024] })
        const firstMs = performance.now() - first
        const runs = [await drain(client, fn, channels), await drain(client, fn, channels)]
        const best = runs.reduce((a, b) => (a.seconds < b.seconds ? a : b))
        console.log(
          `${String(k).padEnd(5)} ${fn.padEnd(18)} ${String(best.rows).padEnd(7)} ${String(Math.round(best.rows / best.seconds)).padEnd(9)} ${firstMs.toFixed(1)}`
        )
      }
    }
  } finally {
    if (process.env.KEEP === undefined) await client.query(`DROP SCHEMA "${schema}" CASCADE`)
    await client.end()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
