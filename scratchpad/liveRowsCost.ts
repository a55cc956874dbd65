/**
 * What sql/0009's live rows cost a producer: `smart_notify` per call before (the schema at
 * 0008: one JSON wake-up per transaction) and after (0009: one signed row per call), with and
 * without a waiting consumer, side by side in one run. Each variant is run in turn, `rounds`
 * times, and the median is printed.
 *
 * - "server, 1 call/commit": a DO block that calls smart_notify and COMMITs, N times: the
 *   function and the commit (with its NOTIFY), no network round trip.
 * - "client, 1 call/commit": N autocommit `SELECT smart_notify($1, $2)` from one connection
 *   (pgbench's one-client figure).
 * - "smart_notify_many(10)/commit": a small batch per transaction, per row.
 * - "N calls in 1 transaction" and "smart_notify_many(N)": the bounded path (100 rows, then
 *   one "read xid").
 *
 * A LISTEN connection registered in `waiting` stands for the consumer, and reads every NOTIFY.
 * The producer runs with synchronous_commit off, so that the figures are the functions' and
 * the commit's own work rather than the disk's flush.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx scratchpad/liveRowsCost.ts [calls=2000] [rounds=5]
 */
import * as NodeFs from "node:fs"
import * as Pg from "pg"

const url = process.env.PGWATCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const calls = Number(process.argv[2] ?? 2000)
const rounds = Number(process.argv[3] ?? 5)
const payload = JSON.stringify({ kind: "order.created", id: 12345, customer: "c-0042", total: 99.5, items: [1, 2, 3], note: "x".repeat(100) })
const sqlDir = new URL("../sql/", import.meta.url)

const connect = async () => {
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  return client
}

/** Applies the migrations up to `upTo` to a fresh schema, as the migrator renders them. */
const install = async (client: Pg.Client, schema: string, upTo: number) => {
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; CREATE SCHEMA "${schema}"`)
  const files = NodeFs.readdirSync(sqlDir).filter((name) => /^\d{4}_.*\.sql$/.test(name) && Number(name.slice(0, 4)) <= upTo).sort()
  for (const name of files) {
    const text = NodeFs.readFileSync(new URL(name, sqlDir), "utf8")
    await client.query(text.replaceAll(":PGWATCH_SCHEMA_LITERAL", `'${schema}'`).replaceAll(":PGWATCH_SCHEMA", `"${schema}"`))
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const admin = await connect()
  const producer = await connect()
  const listener = await connect()
  let received = 0
  listener.on("notification", () => received++)
  const before = `lrc_before_${process.pid}`
  const after = `lrc_after_${process.pid}`
  await install(admin, before, 8)
  await install(admin, after, 9)
  // The WAL flush of each commit (~1 ms here, and noisy on a shared machine) would hide what
  // the functions cost: measured without it.
  await producer.query("SET synchronous_commit = off")
  const [{ server_version }] = (await admin.query("SHOW server_version")).rows
  console.log(
    `PostgreSQL ${server_version}, synchronous_commit off; ${calls} calls per measurement, median of ${rounds} rounds; ` +
      `payload ${payload.length} bytes`
  )

  const channels = { idle: "lrc_idle", waited: "lrc_waited", secret: "lrc_secret" }
  await listener.query(`LISTEN ${channels.waited}; LISTEN ${channels.secret}`)
  for (const schema of [before, after]) {
    await listener.query(
      `INSERT INTO "${schema}".waiting (channel, consumer_id, backend_pid) VALUES ($1, 'c', pg_backend_pid())`,
      [channels.waited]
    )
  }
  await listener.query(
    `INSERT INTO "${after}".waiting (channel, consumer_id, backend_pid, payloads) VALUES ($1, 'c', pg_backend_pid(), false)`,
    [channels.secret]
  )

  const measures: Record<string, (schema: string, channel: string) => Promise<number>> = {
    "server, 1 call/commit": async (schema, channel) => {
      const started = performance.now()
      await producer.query(
        `DO $$ BEGIN FOR i IN 1..${calls} LOOP PERFORM "${schema}".smart_notify('${channel}', '${payload}'); COMMIT; END LOOP; END $$`
      )
      return performance.now() - started
    },
    "client, 1 call/commit": async (schema, channel) => {
      const text = `SELECT "${schema}".smart_notify($1, $2)`
      const started = performance.now()
      for (let i = 0; i < calls; i++) await producer.query({ name: `one_${schema}`, text, values: [channel, payload] })
      return performance.now() - started
    },
    "server, smart_notify_many(10)/commit, per row": async (schema, channel) => {
      const started = performance.now()
      await producer.query(
        `DO $$ BEGIN FOR i IN 1..${calls / 10} LOOP
           PERFORM "${schema}".smart_notify_many('${channel}', array_fill('${payload}'::jsonb, ARRAY[10])); COMMIT;
         END LOOP; END $$`
      )
      return performance.now() - started
    },
    [`${calls} calls in 1 transaction`]: async (schema, channel) => {
      const started = performance.now()
      await producer.query(`SELECT count("${schema}".smart_notify($1, $2)) FROM generate_series(1, ${calls})`, [channel, payload])
      return performance.now() - started
    },
    [`smart_notify_many(${calls})`]: async (schema, channel) => {
      const started = performance.now()
      await producer.query(`SELECT count(*) FROM "${schema}".smart_notify_many($1, array_fill($2::jsonb, ARRAY[${calls}]))`, [
        channel,
        payload
      ])
      return performance.now() - started
    }
  }
  const variants: Array<[string, string, string]> = [
    ["0008, nobody waits", before, channels.idle],
    ["0009, nobody waits", after, channels.idle],
    ["0008, a consumer waits (wake-up)", before, channels.waited],
    ["0009, a consumer waits (signed rows)", after, channels.waited],
    ["0009, a confidential consumer waits (ids)", after, channels.secret]
  ]
  for (const [measure, run] of Object.entries(measures)) {
    const times = new Map<string, Array<number>>(variants.map(([name]) => [name, []]))
    await run(after, channels.idle) // warm the plans
    for (let round = 0; round < rounds; round++) {
      for (const [name, schema, channel] of variants) times.get(name)!.push(await run(schema, channel))
    }
    console.log(`\n${measure}: µs per call (median)`)
    for (const [name] of variants) console.log(`  ${name.padEnd(44)} ${(median(times.get(name)!) * 1000 / calls).toFixed(1).padStart(7)}`)
  }
  // Every NOTIFY has been read before the schemas go.
  await listener.query("SELECT 1")
  console.log(`\n(${received} NOTIFYs received by the listener)`)
  await admin.query(`DROP SCHEMA "${before}" CASCADE; DROP SCHEMA "${after}" CASCADE`)
  await Promise.all([admin.end(), producer.end(), listener.end()])
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
