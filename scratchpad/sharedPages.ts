/**
 * N consumers on one channel in one process (Consumer.layer under one PgWatch.layer) against
 * one producer at full speed (`smart_notify_many` of R rows in a loop on a connection of its own): produced/s,
 * the slowest consumer's handled/s, its lag at the end, and the process's CPU.
 *
 * Runs each N against the core at each path given (e.g. main's checkout and this one), so the
 * figures come side by side from one run; each migrates its own schema from its own sql/.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx scratchpad/sharedPages.ts \
 *     [seconds=10] [counts=1,10,50] [rows per commit=1] /work/main/packages/core/src/index.ts packages/core/src/index.ts
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as Pg from "pg"

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const seconds = Number(process.argv[2] ?? 10)
const counts = (process.argv[3] ?? "1,10,50").split(",").map(Number)
const perCommit = Number(process.argv[4] ?? 1)
const cores = process.argv.slice(5)
const payload = { kind: "order.created", id: 12345, customer: "c-0042", total: 99.5, items: [1, 2, 3], note: "x".repeat(100) }

type Core = typeof import("@pgwatch/core")

const run = async (core: Core, n: number) => {
  const schema = `shared_bench_${process.pid}_${n}`
  const channel = "shared"
  const handled = new Array<number>(n).fill(0)
  const consumers = Layer.mergeAll(
    Layer.empty,
    ...handled.map((_, i) =>
      core.Consumer.layer(core.Consumer.make({
        id: `c${i}`,
        channels: [channel],
        startFrom: "now",
        handle: () => Effect.sync(() => void handled[i]!++)
      }))
    )
  )
  const watch = core.PgWatch.layer({ schema, migrate: true })
  const app = consumers.pipe(Layer.provideMerge(watch), Layer.provide(PgClient.layer({ url: Redacted.make(url) })))
  const producer = new Pg.Client({ connectionString: url })
  await producer.connect()
  try {
    return await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      yield* Layer.build(app)
      const cpu = process.cpuUsage()
      const started = performance.now()
      let produced = 0
      const texts = new Array<string>(perCommit).fill(JSON.stringify(payload))
      while (performance.now() - started < seconds * 1000) {
        yield* Effect.promise(() => producer.query(`SELECT "${schema}".smart_notify_many($1, $2::jsonb[])`, [channel, texts]))
        produced += perCommit
      }
      const elapsed = (performance.now() - started) / 1000
      const used = process.cpuUsage(cpu)
      const slowest = Math.min(...handled)
      return {
        produced: produced / elapsed,
        slowest: slowest / elapsed,
        lag: produced - slowest,
        cpu: (used.user + used.system) / 1e6 / elapsed
      }
    })))
  } finally {
    await producer.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await producer.end()
  }
}

const main = async () => {
  console.log(`${seconds} s per run, ${perCommit} row(s) per commit; core: ${cores.join(" | ")}`)
  console.log("N    core                               produced/s  slowest/s  slowest %  lag end  CPU (cores)  CPU ms/1k rows")
  for (const n of counts) {
    for (const path of cores) {
      const core: Core = await import(pathToFileURL(Path.resolve(path)).href)
      const r = await run(core, n)
      console.log(
        `${String(n).padEnd(4)} ${path.padEnd(34)} ${r.produced.toFixed(0).padStart(10)}  ${r.slowest.toFixed(0).padStart(9)}  ${
          (100 * r.slowest / r.produced).toFixed(1).padStart(8)
        }%  ${String(r.lag).padStart(7)}  ${r.cpu.toFixed(2).padStart(11)}  ${(1e6 * r.cpu / r.produced).toFixed(0).padStart(14)}`
      )
    }
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
