/**
 * Tables from the rows: printed, as JSON (results/latest.json) and as BENCHMARKS.md at the
 * repository root, with the machine, the server and its settings, the command, how each system
 * was configured and what it guarantees, and pgwatch against the issue's targets.
 */
import * as NodeFs from "node:fs/promises"
import * as NodeOs from "node:os"
import type { ServerInfo } from "./database.js"
import type { Mode } from "./mode.js"
import type { Row } from "./scenario.js"
import type { System, SystemName } from "./system.js"
import * as Systems from "./systems/index.js"
import * as Targets from "./targets.js"

export interface Results {
  readonly mode: Mode["name"]
  readonly startedAt: string
  readonly durationS: number
  readonly command: string
  readonly machine: {
    readonly cpus: number
    readonly cpuModel: string
    readonly memoryGb: number
    readonly node: string
    /** 1-minute load average at the start and the end: anything else running shows here. */
    readonly loadAverage: { readonly start: number; readonly end: number }
  }
  readonly postgres: ServerInfo & { readonly origin: string }
  readonly systems: ReadonlyArray<{ readonly name: string; readonly label: string; readonly notes: string }>
  readonly rows: ReadonlyArray<Row>
  readonly targets: ReadonlyArray<Targets.Verdict>
}

export const results = (input: {
  readonly mode: Mode
  readonly startedAt: Date
  readonly loadAtStart: number
  readonly server: string
  readonly info: ServerInfo
  readonly systems: ReadonlyArray<System>
  readonly rows: ReadonlyArray<Row>
  readonly argv: ReadonlyArray<string>
}): Results => ({
  mode: input.mode.name,
  startedAt: input.startedAt.toISOString(),
  durationS: Math.round((Date.now() - input.startedAt.getTime()) / 1000),
  command: `npm run bench${input.argv.length > 0 ? ` -- ${input.argv.join(" ")}` : ""}`,
  machine: {
    cpus: NodeOs.cpus().length,
    cpuModel: NodeOs.cpus()[0]?.model.trim() ?? "unknown",
    memoryGb: Math.round(NodeOs.totalmem() / 2 ** 30),
    node: process.version,
    loadAverage: { start: input.loadAtStart, end: NodeOs.loadavg()[0]! }
  },
  postgres: { ...input.info, origin: input.server },
  systems: input.systems.map((s) => ({ name: s.name, label: s.label, notes: s.notes })),
  rows: input.rows,
  targets: Targets.check(input.rows)
})

/** Per scenario: the figure the ratio column compares, and whether more is better. */
const PRIMARY: Readonly<Record<string, { readonly metric: string; readonly higherIsBetter: boolean }>> = {
  "live": { metric: "delivered_per_s", higherIsBetter: true },
  "latency": { metric: "p50_ms", higherIsBetter: false },
  "playback": { metric: "drained_per_s", higherIsBetter: true },
  "fan-out": { metric: "slowest_consumer_per_s", higherIsBetter: true },
  "notify-cost": { metric: "commits_per_s", higherIsBetter: true },
  "scale-channels": { metric: "drained_per_s", higherIsBetter: true },
  "scale-idle": { metric: "queries_per_s", higherIsBetter: false },
  "scale-fan-out": { metric: "slowest_per_s", higherIsBetter: true }
}

const TITLES: Readonly<Record<string, string>> = {
  "live": "1. Live throughput (one consumer; delivered = end to end)",
  "latency": "2. Latency (ms)",
  "playback": "3. Playback of a backlog (one consumer in its own process)",
  "fan-out": "4. Fan-out (one producer, one transaction per notification)",
  "notify-cost": "5. What NOTIFY costs producers (commits/s, no other consumer)",
  "scale-channels": "6a. Scale: one consumer on K channels drains a backlog spread over them (pgwatch alone)",
  "scale-idle": "6b. Scale: N idle consumers in one process, each on its own channel: start-up, memory, then idle CPU and statements/s sent",
  "scale-fan-out": "6c. Scale: N consumers of one channel in one process, one producer at full speed"
}

/**
 * The figure over the best other product's in the same variant (pgwatch, graphile-worker and
 * pg-boss are the products; the floors are not): above 1 is better for rates, below 1 for
 * latencies. Empty for the floors.
 */
const vsBestPeer = (row: Row, rows: ReadonlyArray<Row>): number => {
  const primary = PRIMARY[row.scenario]
  if (primary === undefined || !Systems.isPeer(row.system)) return Number.NaN
  const others = rows
    .filter((r) => r.scenario === row.scenario && r.variant === row.variant && Systems.product(r.system) !== Systems.product(row.system) && Systems.isPeer(r.system))
    .map((r) => r.metrics[primary.metric] ?? Number.NaN)
    .filter(Number.isFinite)
  if (others.length === 0) return Number.NaN
  const best = primary.higherIsBetter ? Math.max(...others) : Math.min(...others)
  return (row.metrics[primary.metric] ?? Number.NaN) / best
}

const format = (metric: string, value: number | undefined): string => {
  if (value === undefined || !Number.isFinite(value)) return "–"
  if (metric.endsWith("_ms")) return value < 10 ? value.toFixed(2) : value.toFixed(1)
  if (metric.endsWith("_mb")) return value.toFixed(0)
  if (metric.endsWith("_s") && !metric.endsWith("per_s")) return value.toFixed(2)
  return Math.round(value).toLocaleString("en-US")
}

const header = (metric: string) => metric.replaceAll("_per_s", "/s").replaceAll("_", " ")

interface Table {
  readonly title: string
  readonly head: ReadonlyArray<string>
  readonly body: ReadonlyArray<ReadonlyArray<string>>
  readonly notes: ReadonlyArray<string>
}

const tables = (rows: ReadonlyArray<Row>): Array<Table> =>
  Object.keys(PRIMARY).flatMap((scenario) => {
    const these = rows.filter((r) => r.scenario === scenario)
    if (these.length === 0) return []
    const metrics = [...new Set(these.flatMap((r) => Object.keys(r.metrics)))]
    const primary = PRIMARY[scenario]!
    const notes: Array<string> = []
    const body = these.map((row) => {
      const ratio = vsBestPeer(row, these)
      if (row.note !== undefined) notes.push(`[${notes.length + 1}] ${row.system}, ${row.variant}: ${row.note}`)
      return [
        row.variant,
        label(row.system),
        ...metrics.map((m) => format(m, row.metrics[m])),
        Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "",
        row.note === undefined ? "" : `[${notes.length}]`
      ]
    })
    return [{
      title: TITLES[scenario]!,
      head: ["variant", "system", ...metrics.map(header), `vs best peer (${header(primary.metric)}, ${primary.higherIsBetter ? "higher" : "lower"} is better)`, "note"],
      body,
      notes
    }]
  })

const label = (system: SystemName) => system

const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>) =>
  cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")

export const text = (r: Results): string => {
  const out: Array<string> = [""]
  for (const table of tables(r.rows)) {
    const widths = table.head.map((h, i) => Math.max(h.length, ...table.body.map((row) => row[i]!.length)))
    out.push(table.title, pad(table.head, widths), widths.map((w) => "-".repeat(w)).join("  "))
    for (const row of table.body) out.push(pad(row, widths))
    out.push(...table.notes, "")
  }
  out.push("pgwatch against the issue's targets:")
  for (const verdict of r.targets) out.push(`  ${verdict.met ? "met   " : "MISSED"} ${verdict.target}: ${verdict.measured}`)
  out.push(
    "",
    `${r.mode} run, ${r.durationS} s; load average ${r.machine.loadAverage.start.toFixed(1)} -> ${r.machine.loadAverage.end.toFixed(1)} on ${r.machine.cpus} cores; results/latest.json and BENCHMARKS.md written.`,
    ""
  )
  return out.join("\n")
}

const markdownTable = (table: Table) => [
  `| ${table.head.join(" | ")} |`,
  `|${table.head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ...table.body.map((row) => `| ${row.join(" | ")} |`)
]

export const markdown = (r: Results): string => [
  "# Benchmarks",
  "",
  "pgwatch against graphile-worker, pg-boss and PostgreSQL's own floor, in one run, on one machine and one",
  "PostgreSQL, with the same ~200-byte JSON payload and a no-op handler. Generated by `packages/bench`;",
  "do not edit by hand.",
  "",
  `- Command: \`${r.command}\` (${r.mode} mode, ${r.durationS} s, ${r.startedAt})`,
  `- Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGb} GB, Node ${r.machine.node}; 1-minute load average ${r.machine.loadAverage.start.toFixed(1)} at the start, ${r.machine.loadAverage.end.toFixed(1)} at the end (above ~1 means other work shared the machine)`,
  `- PostgreSQL: ${r.postgres.version} (${r.postgres.origin}); ${Object.entries(r.postgres.settings).map(([k, v]) => `${k}=${v}`).join(", ")}`,
  "- Producers run in the bench process, consumers in a child process per step (RSS is the child's).",
  "  Each system has its own database (`bench_<system>`), dropped and recreated per run.",
  "",
  "## Systems and what they guarantee",
  "",
  ...r.systems.map((s) => `- **${s.label}**: ${s.notes}`),
  "",
  "## pgwatch against the targets of issue 9",
  "",
  ...r.targets.map((v) => `- ${v.met ? "✅ met" : "❌ missed"}: ${v.target}: ${v.measured}`),
  "",
  ...tables(r.rows).flatMap((table) => [`## ${table.title}`, "", ...markdownTable(table), "", ...table.notes.map((n) => `${n}  `), ""])
].join("\n")

export const write = async (r: Results) => {
  const dir = new URL("../results/", import.meta.url)
  await NodeFs.mkdir(dir, { recursive: true })
  await NodeFs.writeFile(new URL("latest.json", dir), JSON.stringify(r, null, 2) + "\n")
  await NodeFs.writeFile(new URL("../../../BENCHMARKS.md", import.meta.url), markdown(r))
}
