/**
 * Where a playback's memory goes: one consumer drains a backlog of bench-sized rows (~200-byte
 * JSON, written 1,000 per transaction as the bench does) while `process.memoryUsage()` is
 * sampled every 10 ms; prints the peak of each part (RSS, V8 heap total/used, external,
 * array buffers) and the RSS before and after. Separate runs, so that the filling does not
 * inflate the drain's figures; each drain is a new consumer, so one backlog serves many:
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx --conditions=source scratchpad/playbackMemory.ts fill [backlog=1000000]
 *   DATABASE_URL=... node [--trace-gc] [--max-semi-space-size=N] --conditions=source --import tsx scratchpad/playbackMemory.ts drain [pageSize=1000]
 *   DATABASE_URL=... npx tsx --conditions=source scratchpad/playbackMemory.ts drop
 *
 * `drain [pageSize] survivors` also prints where the objects that outlived young-generation
 * collections were allocated (V8's sampling heap profiler, counting objects later freed by a
 * full collection but not those freed by a scavenge): the ones that grow the old generation.
 * `drain [pageSize] allocations` prints where everything was allocated; `drain [pageSize]
 * snapshot` writes a heap snapshot half-way.
 */
import { PgClient } from "@effect/sql-pg"
import * as Inspector from "node:inspector/promises"
import * as V8 from "node:v8"
import { Consumer, PgWatch } from "@pgwatch/core"
import { Console, Deferred, Effect, Layer } from "effect"
import { DatabaseLive } from "./database.js"

const [mode = "drain", arg, profile] = process.argv.slice(2)
const schema = "playback_memory"
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`

const fill = (backlog: number) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const body = "x".repeat(160)
    for (let done = 0; done < backlog; done += 1000) {
      yield* sql`INSERT INTO ${sql(schema)}.notification_log (channel, payload)
                 SELECT 'playback', jsonb_build_object('seq', s, 'sentAt', 1234567890123, 'body', ${body}::text)
                   FROM generate_series(${done}::int, ${Math.min(backlog, done + 1000) - 1}::int) AS s`
    }
    yield* sql`ANALYZE ${sql(schema)}.notification_log`
    yield* Console.log(`filled ${backlog} rows in ${schema}`)
  })

const drain = (pageSize: number) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const [{ n }] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.notification_log`
    const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
    const sample = () => {
      const now = process.memoryUsage()
      for (const key of Object.keys(peak) as Array<keyof typeof peak>) peak[key] = Math.max(peak[key], now[key])
    }
    const session = new Inspector.Session()
    if (profile === "survivors" || profile === "allocations") {
      session.connect()
      yield* Effect.promise(() =>
        session.post("HeapProfiler.startSampling", {
          samplingInterval: 4096,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: profile === "allocations"
        })
      )
    }
    const before = process.memoryUsage()
    const sampler = setInterval(sample, 10)
    let count = 0
    const done = yield* Deferred.make<void>()
    const started = performance.now()
    yield* Effect.scoped(Effect.zipRight(
      Layer.build(Consumer.layer(Consumer.make({
        id: `drain_${process.pid}`,
        channels: ["playback"],
        handle: () =>
          Effect.sync(() => {
            if (++count === 500_500 && profile === "snapshot") console.log(`heap snapshot: ${V8.writeHeapSnapshot()}`)
            if (count === n) Deferred.unsafeDone(done, Effect.void)
          })
      }), { pageSize })),
      Deferred.await(done)
    ))
    const seconds = (performance.now() - started) / 1000
    clearInterval(sampler)
    sample()
    if (profile === "survivors" || profile === "allocations") yield* Effect.promise(() => sites(session))
    yield* Console.log(
      `drained ${n} in ${seconds.toFixed(2)} s = ${Math.round(n / seconds)}/s, page ${pageSize}; ` +
        `before: rss ${mb(before.rss)} heap ${mb(before.heapUsed)}/${mb(before.heapTotal)}; peaks: rss ${mb(peak.rss)}, ` +
        `heap total ${mb(peak.heapTotal)}, heap used ${mb(peak.heapUsed)}, external ${mb(peak.external)}, ` +
        `array buffers ${mb(peak.arrayBuffers)}; maxRSS ${mb(process.resourceUsage().maxRSS * 1024)}`
    )
  })

interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<ProfileNode>
}

/** The allocation sites (function, file:line, and the two callers above) by bytes sampled. */
const sites = async (session: Inspector.Session) => {
  const sampled = await session.post("HeapProfiler.stopSampling") as unknown as { profile: { head: ProfileNode } }
  const bySite = new Map<string, number>()
  const frame = (node: ProfileNode) =>
    `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.replace(/^.*node_modules\//, "").replace(/^.*\/packages\//, "")}:${node.callFrame.lineNumber + 1}`
  const walk = (node: ProfileNode, stack: ReadonlyArray<string>) => {
    const here = [frame(node), ...stack]
    if (node.selfSize > 0) {
      const key = here.slice(0, 3).join(" < ")
      bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize)
    }
    for (const child of node.children) walk(child, here)
  }
  walk(sampled.profile.head, [])
  const total = [...bySite.values()].reduce((a, b) => a + b, 0)
  console.log(`sampled ${mb(total)} of ${profile === "allocations" ? "all allocations" : "objects that outlived scavenges"}; top sites:`)
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`  ${(bytes / 2 ** 20).toFixed(1).padStart(6)} MB  ${site}`)
  }
}

Effect.gen(function*() {
  if (mode === "fill") yield* fill(Number(arg ?? 1_000_000))
  else if (mode === "drain") yield* drain(Number(arg ?? 1000))
  else {
    const sql = yield* PgClient.PgClient
    yield* sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`
  }
}).pipe(
  Effect.scoped,
  Effect.provide(PgWatch.layer({ schema, migrate: mode === "fill" }).pipe(Layer.provideMerge(DatabaseLive))),
  Effect.runPromise
).then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
