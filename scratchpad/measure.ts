/**
 * Quick figures for the core (the full comparison with peers is `npm run bench`):
 * drain rate of a backlog with a no-op handler, and end-to-end latency of single
 * notifications sent one at a time (commit returned -> handler started), in one process,
 * with where the microseconds of the live path go.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx --conditions=source scratchpad/measure.ts [backlog=100000] [samples=1000]
 *
 * The breakdown is taken from outside the library, which is left as it is:
 * - a bare `pg` client of this script LISTENs on the same channel: when the NOTIFY reached
 *   this process;
 * - `pg.Client.prototype.emit` is wrapped here to time each `notification` event on the
 *   library's own listen connection (it still calls the original);
 * - an Effect `Supervisor` records each fiber's runs (resume -> suspend) while sampling, so
 *   the path from that event to the handler shows as the fibers that ran and the gaps
 *   between them (scheduling);
 * - the handler records its start and its fiber;
 * - V8's CPU profiler samples the sampling phase: CPU time per notification by where the code
 *   lives (each pgwatch file, effect, @effect/sql, pg, node, GC, idle).
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Consumer, PgWatch } from "@pgwatch/core"
import { Console, Deferred, Effect, Layer, Option, Queue, Redacted, Supervisor } from "effect"
import * as NodeEvents from "node:events"
import * as Inspector from "node:inspector/promises"
import * as Pg from "pg"
import { DatabaseLive } from "./database.js"

const backlog = Number(process.argv[2] ?? 100_000)
const samples = Number(process.argv[3] ?? 1000)
const warmUp = 100
const schema = `measure_${process.pid}`
const payload = { kind: "order.created", id: 12345, customer: "c-0042", total: 99.5, items: [1, 2, 3], note: "x".repeat(100) }

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const median = (values: ReadonlyArray<number>) => percentile(values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b), 0.5)
const us = (ms: number) => `${(ms * 1000).toFixed(1).padStart(7)} µs`

const drain = Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  yield* sql`INSERT INTO ${sql(schema)}.notification_log (channel, payload)
             SELECT 'drain', ${JSON.stringify(payload)}::jsonb FROM generate_series(1, ${backlog})`
  let count = 0
  const done = yield* Deferred.make<void>()
  const consumer = Consumer.make({
    id: "drain",
    channels: ["drain"],
    handle: () => Effect.sync(() => ++count === backlog && Deferred.unsafeDone(done, Effect.void))
  })
  const started = performance.now()
  yield* Effect.scoped(Effect.zipRight(Layer.build(Consumer.layer(consumer)), Deferred.await(done)))
  const seconds = (performance.now() - started) / 1000
  yield* Console.log(`drain: ${backlog} notifications in ${seconds.toFixed(2)} s = ${Math.round(backlog / seconds)}/s (rss ${Math.round(process.memoryUsage().rss / 1e6)} MB)`)
})

/**
 * Times of `notification` events on channel "latency" on every `pg` client but the script's own
 * (the library's listen connection).
 */
const libraryArrivals: Array<number> = []
let ownClient: Pg.Client | undefined
const emit = NodeEvents.EventEmitter.prototype.emit
Pg.Client.prototype.emit = function(this: Pg.Client, event: string | symbol, ...args: Array<unknown>) {
  if (event === "notification" && this !== ownClient && (args[0] as Pg.Notification).channel === "latency") {
    libraryArrivals.push(performance.now())
  }
  return emit.call(this, event, ...args)
}

/** Each fiber run while recording: fiber id, resumed at, suspended at (performance.now()). */
class Runs extends Supervisor.AbstractSupervisor<void> {
  value = Effect.void
  recording = false
  /** While set, each new fiber is named by the code it starts with (a snippet of its first function). */
  labelling = false
  readonly labels = new Map<number, string>()
  override onStart(
    _context: unknown,
    effect: unknown,
    parent: Option.Option<{ id(): { id: number } }>,
    fiber: { id(): { id: number } }
  ) {
    if (!this.labelling) return
    const instruction = effect as { effect_instruction_i0?: unknown; effect_instruction_i1?: unknown }
    const code = [instruction.effect_instruction_i0, instruction.effect_instruction_i1].find((f) => typeof f === "function")
    const forkedBy = Option.match(parent, { onNone: () => "", onSome: (p) => `forked by fiber ${p.id().id}: ` })
    this.labels.set(fiber.id().id, `${forkedBy}${String(code ?? "").replace(/\s+/g, " ").slice(0, 80)}`)
  }

  readonly runs: Array<{ readonly fiber: number; readonly from: number; to: number }> = []
  private readonly open = new Map<number, { readonly fiber: number; readonly from: number; to: number }>()
  override onResume(fiber: { id(): { id: number } }) {
    if (!this.recording) return
    const run = { fiber: fiber.id().id, from: performance.now(), to: Number.NaN }
    this.open.set(run.fiber, run)
    this.runs.push(run)
  }
  override onSuspend(fiber: { id(): { id: number } }) {
    const run = this.open.get(fiber.id().id)
    if (run !== undefined) {
      run.to = performance.now()
      this.open.delete(run.fiber)
    }
  }
}

interface Sample {
  readonly committed: number
  readonly rawArrival: number
  readonly arrival: number
  readonly handled: number
  readonly handlerFiber: number
  readonly producerFiber: number
}

const latency = (runs: Runs) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    ownClient = new Pg.Client({ connectionString: Redacted.value(sql.config.url!) })
    yield* Effect.promise(() => ownClient!.connect())
    yield* Effect.addFinalizer(() => Effect.promise(() => ownClient!.end()))
    const rawArrivals: Array<number> = []
    let rawPayload = ""
    ownClient.on("notification", (message) => {
      rawArrivals.push(performance.now())
      rawPayload = message.payload ?? ""
    })
    yield* Effect.promise(() => ownClient!.query("LISTEN latency"))

    const started = yield* Queue.unbounded<{ readonly at: number; readonly fiber: number }>()
    const consumer = Consumer.make({
      id: "latency",
      channels: ["latency"],
      handle: () =>
        Effect.withFiberRuntime<void>((fiber) => {
          started.unsafeOffer({ at: performance.now(), fiber: fiber.id().id })
          return Effect.void
        })
    })
    runs.labelling = true
    yield* Layer.build(Consumer.layer(consumer))
    const producerFiber = yield* Effect.withFiberRuntime<number>((fiber) => Effect.succeed(fiber.id().id))
    const taken: Array<Sample> = []
    const profiler = new Inspector.Session()
    profiler.connect()
    yield* Effect.promise(() => profiler.post("Profiler.enable"))
    yield* Effect.promise(() => profiler.post("Profiler.setSamplingInterval", { interval: 25 }))
    // Warm-up, then `samples` with no instrument on (the figures), then `samples` more with the
    // fiber recording and the CPU profiler on (the breakdown; they slow the path down).
    const clean: Array<Sample> = []
    for (let i = 0; i < warmUp + 2 * samples; i++) {
      if (i === warmUp + samples) {
        runs.recording = true
        yield* Effect.promise(() => profiler.post("Profiler.start"))
      }
      const sent = performance.now()
      yield* PgWatch.notify("latency", payload)
      const committed = performance.now()
      const handled = yield* Queue.take(started)
      if (i < warmUp) continue
      ;(i < warmUp + samples ? clean : taken).push({
        committed,
        // One at a time: this commit's NOTIFY is the first to arrive after it was sent.
        rawArrival: rawArrivals.find((at) => at >= sent) ?? Number.NaN,
        arrival: libraryArrivals.find((at) => at >= sent) ?? Number.NaN,
        handled: handled.at,
        handlerFiber: handled.fiber,
        producerFiber
      })
    }
    runs.recording = false
    runs.labelling = false
    const { profile } = yield* Effect.promise(() => profiler.post("Profiler.stop"))
    profiler.disconnect()
    console.log(`NOTIFYs on "latency": ${rawArrivals.length} on this script's client, ${libraryArrivals.length} on the library's, for ${warmUp + 2 * samples} commits`)
    latencies(clean)
    console.log(`with the fiber recording and the CPU profiler on (${samples} more):`)
    latencies(taken)
    report(taken, runs.runs, runs.labels)
    cpu(profile, taken.length)
    console.log(`  a NOTIFY as it arrived: ${rawPayload.slice(0, 160)}${rawPayload.length > 160 ? "…" : ""}`)
  }).pipe(Effect.scoped)

/** Commit returned -> handler started, and NOTIFY event -> handler started. */
const latencies = (taken: ReadonlyArray<Sample>) => {
  const total = taken.map((s) => s.handled - s.committed).sort((a, b) => a - b)
  const ms = (x: number) => `${x.toFixed(3)} ms`
  console.log(
    `latency (commit returned -> handler started, ${taken.length} sequential): p50 ${ms(percentile(total, 0.5))}, ` +
      `p95 ${ms(percentile(total, 0.95))}, p99 ${ms(percentile(total, 0.99))}, max ${ms(total.at(-1)!)}`
  )
  // In one process the commit's reply and the NOTIFY arrive together, and either may be served
  // first: when the live path runs before the producer's continuation, the figure above is
  // negative. From the NOTIFY event on, it is the library's own time.
  const own = taken.map((s) => s.handled - s.arrival).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  console.log(
    `latency (NOTIFY event on the listen connection -> handler started): p50 ${ms(percentile(own, 0.5))}, ` +
      `p95 ${ms(percentile(own, 0.95))}, p99 ${ms(percentile(own, 0.99))}, max ${ms(own.at(-1)!)}`
  )
}

/** For the commonest sample shape, each fiber run between the NOTIFY and the handler. */
const report = (
  taken: ReadonlyArray<Sample>,
  runs: ReadonlyArray<{ readonly fiber: number; readonly from: number; readonly to: number }>,
  labels: ReadonlyMap<number, string>
) => {
  // Per sample: the runs of other fibers than the producer's that began after the NOTIFY event
  // on the library's connection and before the handler started.
  const chains = taken.map((s) => {
    const chain = runs.filter((r) => r.fiber !== s.producerFiber && r.from >= s.arrival && r.from <= s.handled)
    return { sample: s, chain }
  })
  const shapes = new Map<string, Array<(typeof chains)[number]>>()
  for (const c of chains) {
    const shape = c.chain.map((r) => (r.fiber === c.sample.handlerFiber ? "handler" : "other")).join(">")
    shapes.set(shape, [...(shapes.get(shape) ?? []), c])
  }
  const [shape, common] = [...shapes].sort((a, b) => b[1].length - a[1].length)[0]!
  console.log("where the time goes (medians, relative to the NOTIFY event on the library's listen connection):")
  console.log(`  commit returned (producer fiber)       ${us(median(taken.map((s) => s.committed - s.arrival)))}`)
  console.log(`  NOTIFY on this script's own pg client  ${us(median(taken.map((s) => s.rawArrival - s.arrival)))}`)
  console.log(`  handler started                        ${us(median(taken.map((s) => s.handled - s.arrival)))}`)
  console.log(`  fiber runs on the way: ${common.length} of ${taken.length} samples have the shape [${shape || "none"}]; in those:`)
  const width = common[0]!.chain.length
  for (let i = 0; i < width; i++) {
    const resumed = median(common.map((c) => c.chain[i]!.from - c.sample.arrival))
    const ran = median(common.map((c) => Math.min(c.chain[i]!.to, c.sample.handled) - c.chain[i]!.from))
    const gap = median(common.map((c) => c.chain[i]!.from - (i === 0 ? c.sample.arrival : c.chain[i - 1]!.to)))
    const fiber = common[0]!.chain[i]!.fiber
    const name = `${fiber === common[0]!.sample.handlerFiber ? "handler's " : ""}fiber ${fiber}`
    console.log(
      `    ${name.padEnd(20)} resumed at ${us(resumed)} (${us(gap)} after the previous run ended), ran ${us(ran)}` +
        `${i === width - 1 ? " until the handler started" : ""}`
    )
  }
  console.log("  the fibers, by the code they started with (started earlier: before the sampled consumer):")
  for (const fiber of new Set(common[0]!.chain.map((r) => r.fiber))) {
    console.log(`    fiber ${String(fiber).padEnd(6)} ${labels.get(fiber) ?? "(started earlier)"}`)
  }
  const running = median(common.map((c) => c.chain.reduce((sum, r) => sum + Math.min(r.to, c.sample.handled) - r.from, 0)))
  const end = median(common.map((c) => c.sample.handled - c.sample.arrival))
  console.log(`  in total: ${us(running)} running in fibers, ${us(end - running)} between them (scheduling, I/O waits)`)
}

// Supervised from the start, so that every fiber the library forks (its listen connection's
// too) reports its runs; they are recorded only while sampling latency.
const runs = new Runs()
/** Where a CPU sample's code lives: the pgwatch file, else the package, else what V8 calls it. */
const component = (url: string, name: string) => {
  const own = url.match(/packages\/core\/(?:src|dist)\/(.*)\.[jt]s$/)
  if (own !== null) return `pgwatch ${own[1]}`
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)
  if (pkg !== null) return pkg[1]!
  if (url.startsWith("node:")) return "node"
  if (url.includes("/scratchpad/")) return "this script"
  return name.startsWith("(") ? name : `native ${name}`
}

/** CPU time per notification by component, from the profile of the sampling phase. */
const cpu = (profile: Inspector.Profiler.Profile, count: number) => {
  const self = new Map<number, string>()
  const functions = new Map<number, string>()
  for (const { id, callFrame } of profile.nodes) {
    self.set(id, component(callFrame.url, callFrame.functionName))
    functions.set(id, `${callFrame.functionName || "(anonymous)"} ${callFrame.url.replace(/^.*\/(node_modules|packages)\//, "")}:${callFrame.lineNumber + 1}`)
  }
  const time = new Map<string, number>()
  const byFunction = new Map<string, number>()
  const deltas = profile.timeDeltas ?? []
  ;(profile.samples ?? []).forEach((id, i) => {
    const key = self.get(id)!
    time.set(key, (time.get(key) ?? 0) + (deltas[i + 1] ?? 0))
    if (!key.startsWith("(")) byFunction.set(functions.get(id)!, (byFunction.get(functions.get(id)!) ?? 0) + (deltas[i + 1] ?? 0))
  })
  const busy = [...time].filter(([key]) => key !== "(idle)" && key !== "(program)")
  const total = busy.reduce((sum, [, t]) => sum + t, 0)
  console.log(
    `CPU per notification while sampling, producer's side included (V8 profiler, 25 µs interval; idle left out): ${
      (total / count).toFixed(1)
    } µs in all`
  )
  for (const [key, t] of busy.sort((a, b) => b[1] - a[1]).slice(0, 14)) {
    console.log(`  ${key.padEnd(36)} ${(t / count).toFixed(1).padStart(7)} µs`)
  }
  console.log("  the functions that took most (self time):")
  for (const [name, t] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`    ${(t / count).toFixed(1).padStart(7)} µs  ${name}`)
  }
}

Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  yield* Effect.addFinalizer(() => Effect.orDie(sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
  yield* drain
  yield* latency(runs)
}).pipe(
  Effect.scoped,
  Effect.provide(PgWatch.layer({ schema, migrate: true }).pipe(Layer.provideMerge(DatabaseLive))),
  Effect.supervised(runs),
  NodeRuntime.runMain
)
