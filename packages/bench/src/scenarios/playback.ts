/**
 * Scenario 3, playback: a backlog written while no consumer runs (in transactions of 1,000),
 * then one consumer starts in a fresh child process. Drain time runs from asking it to start
 * (connecting included) to the handler start of the last notification; peak RSS is the
 * child's `process.resourceUsage().maxRSS`.
 */
import * as ConsumerChild from "../consumerChild.js"
import { withClient } from "../pg.js"
import * as Progress from "../progress.js"
import { flood, Sequence } from "../producers.js"
import type { Context, Row } from "../scenario.js"
import { perSecond } from "../stats.js"
import type { System } from "../system.js"

const BATCH = 1000
const WRITERS = 2
const BUILD_LIMIT_MS = 15 * 60_000

const runSystem = async (context: Context, system: System): Promise<Row> => {
  const { mode } = context
  const url = context.urlOf(system)
  const topic = await context.topic(system, "playback", 1)
  const producer = await system.producer(url, topic, WRITERS)
  const sequence = new Sequence()
  const built = await Progress.watching(
    `${system.name} backlog`,
    () => `${sequence.count} of ${mode.backlog}`,
    flood(producer, sequence, { connections: WRITERS, batch: BATCH, durationMs: BUILD_LIMIT_MS, maxCount: mode.backlog })
  ).finally(() => producer.close())
  await withClient(url, (client) => client.query("ANALYZE"))

  const child = await ConsumerChild.spawn({ system: system.name, url, topic, echo: false })
  const { startAt } = await child.start()
  const reach = await Progress.watching(
    `${system.name} drain`,
    () => `${child.counts()[0]} of ${built.committed}`,
    child.reach(built.committed, mode.drainTimeoutMs)
  )
  const peakRssKb = await child.stop()
  const handled = reach.reached ? built.committed : reach.counts[0]!
  const lastAt = reach.reached ? reach.at[0]! : reach.lastAt[0]!
  const row: Row = {
    scenario: "playback",
    variant: `backlog ${built.committed.toLocaleString("en-US")}`,
    system: system.name,
    metrics: {
      drained_per_s: perSecond(handled, lastAt - startAt),
      drain_s: reach.reached ? (lastAt - startAt) / 1e6 : Number.NaN,
      peak_rss_mb: peakRssKb / 1024,
      loaded_rss_mb: child.loadedRssKb / 1024,
      backlog_written_per_s: perSecond(built.committed, built.elapsedUs)
    },
    ...(reach.reached ? {} : { note: `drained ${handled} of ${built.committed} within ${mode.drainTimeoutMs / 1000} s` })
  }
  Progress.log(`  ${system.name} playback: ${Progress.figures(row.metrics)}`)
  return row
}

export const run = async (context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const system of context.systems) rows.push(await runSystem(context, system))
  return rows
}
