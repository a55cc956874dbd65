/**
 * One consumer (Consumer.layer under PgWatch.layer) draining a backlog spread over K channels
 * (1,000 transactions, each writing over the channels in turn), against each core path given,
 * side by side in one run: notifications/s from start to the last one handled, and the
 * process's CPU per 1,000 (steadier than rates on a loaded machine).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx scratchpad/drainChannels.ts \
 *     [rows=100000] [channels=1,10,100] /work/main/packages/core/src/index.ts packages/core/src/index.ts
 */
import { PgClient } from "@effect/sql-pg"
import { Deferred, Effect, Layer, Redacted } from "effect"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as Pg from "pg"

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const total = Number(process.argv[2] ?? 100_000)
const ks = (process.argv[3] ?? "1,10,100").split(",").map(Number)
const cores = process.argv.slice(4)
const payload = JSON.stringify({ kind: "order.created", id: 12345, customer: "c-0042", total: 99.5, items: [1, 2, 3], note: "x".repeat(100) })

type Core = typeof import("@pgwatch/core")

const run = async (core: Core, k: number) => {
  const schema = `drain_bench_${process.pid}_${k}`
  const channels = Array.from({ length: k }, (_, i) => `d${i}`)
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const watch = yield* Layer.build(
        core.PgWatch.layer({ schema, migrate: true }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(url) })))
      )
      for (let t = 0; t < 1000; t++) {
        yield* Effect.promise(() =>
          client.query(
            `INSERT INTO "${schema}".notification_log (channel, payload)
             SELECT ($1::text[])[1 + (($2::int * $3::int + i) % cardinality($1::text[]))], $4::jsonb FROM generate_series(0, $3::int - 1) i`,
            [channels, t, total / 1000, payload]
          )
        )
      }
      yield* Effect.promise(() => client.query(`VACUUM ANALYZE "${schema}".notification_log`))
      let handled = 0
      const done = yield* Deferred.make<void>()
      const consumer = core.Consumer.make({
        id: "drain",
        channels,
        handle: () => Effect.sync(() => ++handled === total && Deferred.unsafeDone(done, Effect.void))
      })
      const started = performance.now()
      const cpu = process.cpuUsage()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(core.Consumer.layer(consumer)).pipe(Effect.provide(watch))
        yield* Deferred.await(done)
      }))
      const used = process.cpuUsage(cpu)
      return { rate: total / ((performance.now() - started) / 1000), cpuPerK: (used.user + used.system) / 1000 / (total / 1000) }
    })))
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await client.end()
  }
}

const main = async () => {
  console.log(`${total} rows; core: ${cores.join(" | ")}`)
  console.log("K     core                                     drain/s  CPU ms/1k rows")
  for (const k of ks) {
    for (const path of cores) {
      const core: Core = await import(pathToFileURL(Path.resolve(path)).href)
      const r = await run(core, k)
      console.log(`${String(k).padEnd(5)} ${path.padEnd(40)} ${r.rate.toFixed(0).padStart(8)}  ${r.cpuPerK.toFixed(1).padStart(14)}`)
    }
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
