/**
 * Scenario 1, live throughput: 1 and 4 producer connections committing as fast as they can
 * (one notification per transaction, or 100) while one consumer runs. End-to-end rate = all
 * notifications / (first send -> the consumer's handler start for the last one); lag = how many
 * were not yet handled when the producers stopped.
 */
import { floodAndDeliver } from "../delivery.js"
import * as Progress from "../progress.js"
import type { Context, Row } from "../scenario.js"
import { perSecond } from "../stats.js"

export const variants = [
  { connections: 1, batch: 1 },
  { connections: 4, batch: 1 },
  { connections: 1, batch: 100 },
  { connections: 4, batch: 100 }
] as const

export const variantName = (v: { readonly connections: number; readonly batch: number }) =>
  `${v.connections} producer${v.connections > 1 ? "s" : ""}, ${v.batch}/tx`

export const run = async (context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const variant of variants) {
    for (const system of context.systems) {
      const name = variantName(variant)
      const topic = await context.topic(system, `live_${variant.connections}_${variant.batch}`, 1)
      const figures = await floodAndDeliver(context, system, topic, {
        ...variant,
        durationMs: context.mode.liveMs,
        label: `${system.name} ${name}`
      })
      const consumer = figures.consumers[0]!
      const row: Row = {
        scenario: "live",
        variant: name,
        system: system.name,
        metrics: {
          produced_per_s: perSecond(figures.produced.committed, figures.produced.elapsedUs),
          delivered_per_s: consumer.deliveredPerSecond,
          lag_at_end: consumer.lagAtEnd,
          catch_up_ms: consumer.catchUpMs
        },
        ...(figures.note === undefined ? {} : { note: figures.note })
      }
      Progress.log(`  ${system.name} ${name}: ${Progress.figures(row.metrics)}`)
      rows.push(row)
    }
  }
  return rows
}
