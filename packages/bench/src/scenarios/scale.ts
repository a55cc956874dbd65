/**
 * Scenario 6, scale (issue #15): what grows with the work, pgwatch only, each step in a fresh
 * child process (scaleProcess.ts) running its consumers under one `PgWatch.layer` with the
 * default pool size, in a database of its own (`bench_scale`):
 * - channels: one consumer on K = 1, 10, 100 channels drains a backlog spread over them;
 * - idle: N = 1, 10, 100, 500 consumers, each on its own channel, nothing written: start-up
 *   time (and the CPU it took, which other load on the machine does not stretch) and memory
 *   right after, then, once the start-up work has settled, the process's CPU and the
 *   statements it sends per second over a window of several poll intervals. Statements are
 *   counted in the child, on every connection (a wrapper of `pg.Client.query`): exact, where
 *   pg_stat_database's transaction counts arrive up to 10 s late and pg_stat_statements is
 *   usually not installed;
 * - fan-out: N = 1, 10, 50 consumers on one channel against one producer at full speed (bare
 *   `smart_notify`, one transaction per notification).
 */
import * as PgWatch from "@pgwatch/core/PgWatch"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Database from "../database.js"
import * as Pg from "../pg.js"
import * as Progress from "../progress.js"
import type { Context, Row } from "../scenario.js"
import type { FromScale, ScaleArgs, ToScale } from "../scaleProtocol.js"

const SCHEMA = "pgwatch"
const DATABASE = "bench_scale"

const compiled = import.meta.url.endsWith(".js")
const script = fileURLToPath(new URL(compiled ? "../scaleProcess.js" : "../scaleProcess.ts", import.meta.url))
const loaderFlags = compiled ? [] : ["--conditions=source", "--import", "tsx"]

/** A running child: its start-up figures, and requests answered over IPC. */
const spawn = async (args: ScaleArgs) => {
  const child = fork(script, [JSON.stringify(args)], {
    execArgv: [...loaderFlags, ...(process.env.BENCH_CHILD_FLAGS ?? "").split(" ").filter((f) => f !== "")],
    // The child's log lines (e.g. shutdown warnings) go to stderr: stdout holds only the tables.
    stdio: ["ignore", 2, 2, "ipc"]
  })
  const next = <T extends FromScale["type"]>(type: T, timeoutMs = 120_000) =>
    new Promise<Extract<FromScale, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`scale child sent no ${type} in ${timeoutMs} ms`)), timeoutMs)
      const onMessage = (message: FromScale) => {
        if (message.type !== type && message.type !== "failed") return
        clearTimeout(timer)
        child.off("message", onMessage)
        if (message.type === "failed") reject(new Error(`scale child failed: ${message.message}`))
        else resolve(message as Extract<FromScale, { type: T }>)
      }
      child.on("message", onMessage)
    })
  const ask = <T extends FromScale["type"]>(request: ToScale, type: T) => {
    const answer = next(type)
    child.send(request)
    return answer
  }
  const started = await next("started")
  return {
    started,
    cpu: () => ask({ type: "cpu" }, "cpu"),
    counts: () => ask({ type: "counts" }, "counts").then((m) => m.counts),
    stop: () => ask({ type: "stop" }, "stopped").catch(() => child.kill()).then(() => undefined)
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until every consumer has handled `target`; the time it took from `since` (ms). */
const reach = async (child: Awaited<ReturnType<typeof spawn>>, target: number, since: number, timeoutMs: number) => {
  for (;;) {
    const counts = await child.counts()
    if (counts.every((c) => c >= target)) return performance.now() - since
    if (performance.now() - since > timeoutMs) return Number.NaN
    await sleep(20)
  }
}

const channels = async (url: string, context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const k of [1, 10, 100]) {
    const names = Array.from({ length: k }, (_, i) => `drain${k}_${i}`)
    const total = context.mode.scaleDrainRows
    // 100 rows per transaction, round-robin over the channels.
    await Pg.withClient(url, (client) =>
      client.query(`
        DO $$ BEGIN
          FOR b IN 0..${total / 100 - 1} LOOP
            INSERT INTO ${SCHEMA}.notification_log (channel, payload)
            SELECT 'drain${k}_' || (i % ${k}), jsonb_build_object('seq', i, 'pad', repeat('x', 100))
              FROM generate_series(b * 100, b * 100 + 99) AS i;
            COMMIT;
          END LOOP;
        END $$`))
    const child = await spawn({ url, schema: SCHEMA, poolSize: PgWatch.defaultPoolSize, consumers: [{ id: `drain${k}`, channels: names }] })
    const since = performance.now() - child.started.ms
    const ms = await reach(child, total, since, Math.max(context.mode.drainTimeoutMs, 60_000))
    await child.stop()
    const row: Row = {
      scenario: "scale-channels",
      variant: `1 consumer, K=${k}`,
      system: "pgwatch",
      metrics: { rows: total, drained_per_s: (total * 1000) / ms }
    }
    Progress.log(`  channels K=${k}: ${Progress.figures(row.metrics)}`)
    rows.push(row)
  }
  return rows
}

const idle = async (url: string, context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const n of [1, 10, 100, 500]) {
    const consumers = Array.from({ length: n }, (_, i) => ({ id: `idle${n}_${i}`, channels: [`idle${n}_${i}`] }))
    const child = await spawn({ url, schema: SCHEMA, poolSize: PgWatch.defaultPoolSize, consumers })
    // Consumers go on registering for wake-ups after they listen: let that settle, then
    // measure over the window.
    await sleep(Math.max(3_000, child.started.ms))
    const cpu0 = await child.cpu()
    await sleep(context.mode.scaleIdleMs)
    const cpu1 = await child.cpu()
    await child.stop()
    const seconds = (cpu1.at - cpu0.at) / 1000
    const row: Row = {
      scenario: "scale-idle",
      variant: `${n} idle consumer${n > 1 ? "s" : ""}`,
      system: "pgwatch",
      metrics: {
        start_ms: child.started.ms,
        start_cpu_ms: child.started.cpuMs,
        rss_mb: child.started.rssKb / 1024,
        heap_mb: child.started.heapKb / 1024,
        cpu_percent: ((cpu1.us - cpu0.us) / 1e4) / seconds,
        queries_per_s: (cpu1.statements - cpu0.statements) / seconds
      }
    }
    Progress.log(`  idle N=${n}: ${Progress.figures(row.metrics)}`)
    rows.push(row)
  }
  return rows
}

const fanOut = async (url: string, context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  const producer = await Pg.connect(url, "bench scale producer")
  try {
    for (const n of [1, 10, 50]) {
      const channel = `fan${n}`
      const consumers = Array.from({ length: n }, (_, i) => ({ id: `fan${n}_${i}`, channels: [channel] }))
      const child = await spawn({ url, schema: SCHEMA, poolSize: PgWatch.defaultPoolSize, consumers })
      const began = performance.now()
      let produced = 0
      while (performance.now() - began < context.mode.scaleProducingMs) {
        await producer.query(`SELECT ${SCHEMA}.smart_notify($1, $2::jsonb)`, [channel, JSON.stringify({ seq: produced })])
        produced += 1
      }
      const seconds = (performance.now() - began) / 1000
      const counts = await child.counts()
      await child.stop()
      const slowest = Math.min(...counts)
      const row: Row = {
        scenario: "scale-fan-out",
        variant: `${n} consumer${n > 1 ? "s" : ""}`,
        system: "pgwatch",
        metrics: { produced_per_s: produced / seconds, slowest_per_s: slowest / seconds, lag_at_end: produced - slowest }
      }
      Progress.log(`  fan-out N=${n}: ${Progress.figures(row.metrics)}`)
      rows.push(row)
    }
  } finally {
    await producer.end()
  }
  return rows
}

export const run = async (context: Context): Promise<Array<Row>> => {
  const server = context.serverUrl
  await Database.recreate(server, DATABASE)
  const url = Database.databaseUrl(server, DATABASE)
  try {
    await Effect.runPromise(Effect.scoped(Layer.build(
      PgWatch.layer({ schema: SCHEMA, migrate: true }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(url) })))
    )))
    return [...await channels(url, context), ...await idle(url, context), ...await fanOut(url, context)]
  } finally {
    await Database.drop(server, DATABASE)
  }
}
