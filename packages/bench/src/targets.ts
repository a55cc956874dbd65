/** pgwatch's targets from issue 9, checked against a run's rows. */
import type { Row } from "./scenario.js"
import type { SystemName } from "./system.js"
import { variantName, variants } from "./scenarios/live.js"

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

/**
 * "Today's ratio to the floor" that issue 9 says live throughput must keep: pgwatch's delivered
 * rate over the INSERT-only floor's produced rate, per variant and producer path, in the full
 * run of the code before issue 9 (BENCHMARKS.md at commit f123716, `npm run bench -- --full`).
 */
const LIVE_RATIO_BEFORE: Readonly<Record<string, Readonly<Record<"pgwatch" | "pgwatch-sql", number>>>> = {
  "1 producer, 1/tx": { "pgwatch": 0.726, "pgwatch-sql": 0.918 },
  "4 producers, 1/tx": { "pgwatch": 0.577, "pgwatch-sql": 0.760 },
  "1 producer, 100/tx": { "pgwatch": 0.477, "pgwatch-sql": 0.600 },
  "4 producers, 100/tx": { "pgwatch": 0.444, "pgwatch-sql": 0.498 }
}

/** The live floor of issue 9: bare `pg` LISTEN, the payload in the NOTIFY, straight to the handler. */
const FLOOR = "floor+payload"

export const check = (rows: ReadonlyArray<Row>): Array<Verdict> => {
  const verdicts: Array<Verdict> = []
  const has = (scenario: string) => rows.some((r) => r.scenario === scenario && r.system === "pgwatch")

  if (has("live")) {
    const paths = [["pgwatch", "PgWatch.notify"], ["pgwatch-sql", "SQL smart_notify"]] as const
    for (const variant of variants.map(variantName)) {
      const floor = figure(rows, "live", variant, "floor", "produced_per_s")
      const payloadFloor = figure(rows, "live", variant, FLOOR, "delivered_per_s")
      for (const [system, path] of paths) {
        const pgwatch = figure(rows, "live", variant, system, "delivered_per_s")
        if (Number.isNaN(pgwatch)) continue
        const before = LIVE_RATIO_BEFORE[variant]![system]
        verdicts.push({
          target: `live, ${variant}, producers through ${path}: delivered / INSERT-only floor >= ${n(100 * before)}% (the ratio before issue 9)`,
          met: pgwatch >= before * floor,
          measured: `${n(pgwatch)}/s = ${n((100 * pgwatch) / floor)}% of the floor's ${n(floor)}/s; the live floor (payload in the NOTIFY) delivered ${n(payloadFloor)}/s`
        })
      }
    }
  }
  if (has("latency")) {
    const own = figure(rows, "latency", "sequential", "pgwatch", "p50_ms")
    const ownP99 = figure(rows, "latency", "sequential", "pgwatch", "p99_ms")
    const floor = figure(rows, "latency", "sequential", FLOOR, "p50_ms")
    verdicts.push({
      target: "sequential latency, commit -> handler: p50 <= 0.25 ms and <= 2x the live floor's p50; p99 <= 2 ms",
      met: own <= 0.25 && own <= 2 * floor && ownP99 <= 2,
      measured: `p50 ${n(own, 3)} ms (${n(own / floor, 1)}x the live floor's ${n(floor, 3)} ms), p99 ${n(ownP99, 2)} ms`
    })
    const p50 = figure(rows, "latency", "paced", "pgwatch", "created_at_p50_ms")
    const p99 = figure(rows, "latency", "paced", "pgwatch", "created_at_p99_ms")
    const floorP50 = figure(rows, "latency", "paced", FLOOR, "created_at_p50_ms")
    const floorCommit = figure(rows, "latency", "paced", FLOOR, "commit_p50_ms")
    verdicts.push({
      target: "paced latency, created_at -> handler: p50 within 0.15 ms of the live floor's; p99 <= 3 ms",
      met: p50 - floorP50 <= 0.15 && p99 <= 3,
      measured: `p50 ${n(p50, 3)} ms (live floor ${n(floorP50, 3)} ms, +${n(p50 - floorP50, 3)} ms), p99 ${n(p99, 2)} ms; the live floor's commit alone took p50 ${n(floorCommit, 2)} ms`
    })
  }
  if (has("playback")) {
    const rate = figure(rows, "playback", "backlog", "pgwatch", "drained_per_s")
    const rss = figure(rows, "playback", "backlog", "pgwatch", "peak_rss_mb")
    const backlog = rows.find((r) => r.scenario === "playback" && r.system === "pgwatch")?.variant ?? ""
    verdicts.push({
      target: "playback >= 60,000/s with peak RSS <= 200 MB (the target names a 1M backlog: --full)",
      met: rate >= 60_000 && rss <= 200,
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
