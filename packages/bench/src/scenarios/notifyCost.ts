/**
 * Scenario 5, what NOTIFY costs at commit: producers committing one notification per
 * transaction as fast as they can, with 1 and 4 connections. A transaction that NOTIFYs takes a
 * server-wide lock through its commit, so NOTIFYing commits run one at a time.
 *
 * Cases: the floor without and with pg_notify; pgwatch with nobody waiting (as when its
 * consumers are busy catching up: no NOTIFY), with a consumer that is always waiting (every
 * commit NOTIFYs), and with a live consumer (what it really does); graphile-worker, whose
 * add_job always NOTIFYs; pg-boss, whose send never does. No other consumer runs.
 */
import * as Progress from "../progress.js"
import { flood, Sequence } from "../producers.js"
import { startConsumers, type Context, type Row } from "../scenario.js"
import { perSecond } from "../stats.js"
import type { System } from "../system.js"
import * as PgWatch from "../systems/pgwatch.js"

interface Case {
  readonly system: System
  readonly label: string
  readonly consumer: boolean
  readonly holdWaiting: boolean
}

const cases = (systems: ReadonlyArray<System>): Array<Case> =>
  systems.flatMap((system): Array<Case> => {
    switch (system.name) {
      case "pgwatch":
      case "pgwatch-sql":
        return [
          { system, label: "nobody waiting (no NOTIFY)", consumer: false, holdWaiting: false },
          { system, label: "a consumer always waiting (NOTIFY per commit)", consumer: false, holdWaiting: true },
          { system, label: "a live consumer", consumer: true, holdWaiting: false }
        ]
      case "graphile-worker":
        return [{ system, label: "add_job (always NOTIFYs)", consumer: false, holdWaiting: false }]
      case "pg-boss":
        return [{ system, label: "send (never NOTIFYs)", consumer: false, holdWaiting: false }]
      case "floor":
        return [{ system, label: "INSERT", consumer: false, holdWaiting: false }]
      case "floor+notify":
        return [{ system, label: "INSERT + pg_notify", consumer: false, holdWaiting: false }]
      case "floor+payload":
        return [{ system, label: "INSERT + pg_notify of the row", consumer: false, holdWaiting: false }]
    }
  })

const runCase = async (context: Context, c: Case, connections: number): Promise<Row> => {
  const url = context.urlOf(c.system)
  const topic = await context.topic(c.system, `notify_cost_${connections}_${c.consumer ? "live" : c.holdWaiting ? "waiting" : "none"}`, 1)
  const release = c.holdWaiting ? await PgWatch.holdWaiting(url, topic.name) : undefined
  const running = c.consumer ? await startConsumers(context, c.system, topic) : undefined
  const producer = await c.system.producer(url, topic, connections)
  try {
    const produced = await flood(producer, new Sequence(), {
      connections,
      batch: 1,
      durationMs: context.mode.notifyCostMs,
      maxCount: Number.MAX_SAFE_INTEGER
    })
    const row: Row = {
      scenario: "notify-cost",
      variant: `${connections} producer${connections > 1 ? "s" : ""}, 1/tx: ${c.label}`,
      system: c.system.name,
      metrics: { commits_per_s: perSecond(produced.committed, produced.elapsedUs) }
    }
    Progress.log(`  ${c.system.name} ${row.variant}: ${Progress.figures(row.metrics)}`)
    return row
  } finally {
    await producer.close()
    await running?.child.stop()
    await release?.()
  }
}

export const run = async (context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const connections of [1, 4]) {
    for (const c of cases(context.systems)) rows.push(await runCase(context, c, connections))
  }
  return rows
}
