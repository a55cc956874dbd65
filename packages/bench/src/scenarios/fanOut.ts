/**
 * Scenario 4, fan-out: 1, 4 and 16 consumers of one topic, each of which must handle every
 * notification, fed by one producer at full speed (one notification per transaction). All
 * consumers of a system run in one child process.
 */
import { floodAndDeliver } from "../delivery.js"
import * as Progress from "../progress.js"
import type { Context, Row } from "../scenario.js"
import { perSecond } from "../stats.js"

export const run = async (context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const consumers of context.mode.fanOut) {
    for (const system of context.systems) {
      const variant = `${consumers} consumer${consumers > 1 ? "s" : ""}`
      const topic = await context.topic(system, `fanout_${consumers}`, consumers)
      const figures = await floodAndDeliver(context, system, topic, {
        connections: 1,
        batch: 1,
        durationMs: context.mode.fanOutMs,
        label: `${system.name} ${variant}`
      })
      const rates = figures.consumers.map((c) => c.deliveredPerSecond)
      const row: Row = {
        scenario: "fan-out",
        variant,
        system: system.name,
        metrics: {
          produced_per_s: perSecond(figures.produced.committed, figures.produced.elapsedUs),
          slowest_consumer_per_s: Math.min(...rates),
          total_per_s: rates.reduce((a, b) => a + b, 0),
          max_lag_at_end: Math.max(...figures.consumers.map((c) => c.lagAtEnd)),
          max_catch_up_ms: Math.max(...figures.consumers.map((c) => c.catchUpMs))
        },
        ...(figures.note === undefined ? {} : { note: figures.note })
      }
      Progress.log(`  ${system.name} ${variant}: ${Progress.figures(row.metrics)}`)
      rows.push(row)
    }
  }
  return rows
}
