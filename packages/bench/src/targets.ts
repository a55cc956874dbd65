/** pgwatch's targets from issue 4, checked against a run's rows. */
import type { Row } from "./scenario.js"
import type { SystemName } from "./system.js"

export interface Verdict {
  readonly target: string
  readonly met: boolean
  readonly measured: string
}

const figure = (rows: ReadonlyArray<Row>, scenario: string, variant: string, system: SystemName, metric: string) =>
  rows.find((r) => r.scenario === scenario && r.variant.startsWith(variant) && r.system === system)?.metrics[metric] ??
    Number.NaN

const n = (value: number, digits = 0) =>
  Number.isFinite(value) ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a"

export const check = (rows: ReadonlyArray<Row>): Array<Verdict> => {
  const verdicts: Array<Verdict> = []
  const has = (scenario: string) => rows.some((r) => r.scenario === scenario && r.system === "pgwatch")

  if (has("live")) {
    const paths = [["pgwatch", "PgWatch.notify"], ["pgwatch-sql", "SQL smart_notify"]] as const
    for (const batch of ["1/tx", "100/tx"]) {
      const variant = `4 producers, ${batch}`
      const floor = figure(rows, "live", variant, "floor", "produced_per_s")
      const graphile = figure(rows, "live", variant, "graphile-worker", "delivered_per_s")
      const boss = figure(rows, "live", variant, "pg-boss", "delivered_per_s")
      for (const [system, path] of paths) {
        const pgwatch = figure(rows, "live", variant, system, "delivered_per_s")
        if (Number.isNaN(pgwatch)) continue
        verdicts.push({
          target: `live, ${variant}, producers through ${path}: delivered >= 90% of the INSERT-only floor, and more than graphile-worker and pg-boss`,
          met: pgwatch >= 0.9 * floor && pgwatch > graphile && pgwatch > boss,
          measured: `${n(pgwatch)}/s = ${n((100 * pgwatch) / floor)}% of the floor's ${n(floor)}/s; graphile-worker ${n(graphile)}/s, pg-boss ${n(boss)}/s`
        })
      }
    }
  }
  if (has("latency")) {
    const p50 = figure(rows, "latency", "paced", "pgwatch", "created_at_p50_ms")
    const p99 = figure(rows, "latency", "paced", "pgwatch", "created_at_p99_ms")
    const floorCommit = figure(rows, "latency", "paced", "floor", "commit_p50_ms")
    const floorP50 = figure(rows, "latency", "paced", "floor", "created_at_p50_ms")
    verdicts.push({
      target: "paced latency, created_at -> handler: p50 <= 0.5 ms, p99 <= 2 ms",
      met: p50 <= 0.5 && p99 <= 2,
      measured: `p50 ${n(p50, 2)} ms, p99 ${n(p99, 2)} ms; on this machine a bare INSERT's commit alone took p50 ${n(floorCommit, 2)} ms and the floor's created_at -> handler p50 ${n(floorP50, 2)} ms`
    })
    const own = figure(rows, "latency", "sequential", "pgwatch", "p50_ms")
    const graphile = figure(rows, "latency", "sequential", "graphile-worker", "p50_ms")
    const boss = figure(rows, "latency", "sequential", "pg-boss", "p50_ms")
    verdicts.push({
      target: "sequential latency (p50) better than both peers",
      met: own < graphile && own < boss,
      measured: `pgwatch ${n(own, 2)} ms, graphile-worker ${n(graphile, 2)} ms, pg-boss ${n(boss, 2)} ms`
    })
  }
  if (has("playback")) {
    const rate = figure(rows, "playback", "backlog", "pgwatch", "drained_per_s")
    const rss = figure(rows, "playback", "backlog", "pgwatch", "peak_rss_mb")
    const backlog = rows.find((r) => r.scenario === "playback" && r.system === "pgwatch")?.variant ?? ""
    verdicts.push({
      target: "playback >= 50,000/s with peak RSS <= 200 MB (the target names a 1M backlog)",
      met: rate >= 50_000 && rss <= 200,
      measured: `${backlog}: ${n(rate)}/s, peak RSS ${n(rss)} MB`
    })
  }
  if (has("fan-out")) {
    const slowest = figure(rows, "fan-out", "16 consumers", "pgwatch", "slowest_consumer_per_s")
    const produced = figure(rows, "fan-out", "16 consumers", "pgwatch", "produced_per_s")
    const lag = figure(rows, "fan-out", "16 consumers", "pgwatch", "max_lag_at_end")
    verdicts.push({
      target: "fan-out: 16 consumers each keep up with one producer at full speed (slowest >= 90% of produced)",
      met: slowest >= 0.9 * produced,
      measured: `producer ${n(produced)}/s, slowest consumer ${n(slowest)}/s, largest lag at the end ${n(lag)}`
    })
  }
  return verdicts
}
