/**
 * The step live throughput and fan-out share: consumers running in a child, producers flooding
 * the topic, then a wait for the consumers to catch up.
 */
import * as Progress from "./progress.js"
import { flood, Sequence, type FloodResult } from "./producers.js"
import { startConsumers, type Context } from "./scenario.js"
import { perSecond } from "./stats.js"
import type { System, Topic } from "./system.js"

/** How long to wait for stragglers from a system that may have skipped them for good. */
const SKIPPING_WAIT_MS = 2000

export interface ConsumerFigures {
  readonly handled: number
  /** All it handled / (first send -> its last handler start). */
  readonly deliveredPerSecond: number
  /** Produced but not yet handled when the producers stopped. */
  readonly lagAtEnd: number
  /** From the producers stopping to its last handler start; NaN if it never caught up. */
  readonly catchUpMs: number
}

export interface DeliveryFigures {
  readonly produced: FloodResult
  readonly consumers: ReadonlyArray<ConsumerFigures>
  /** Set when some consumer did not handle everything in time. */
  readonly note?: string
}

export const floodAndDeliver = async (
  context: Context,
  system: System,
  topic: Topic,
  options: { readonly connections: number; readonly batch: number; readonly durationMs: number; readonly label: string }
): Promise<DeliveryFigures> => {
  const { child } = await startConsumers(context, system, topic)
  const producer = await system.producer(context.urlOf(system), topic, options.connections)
  const sequence = new Sequence()
  try {
    const produced = await Progress.watching(
      options.label,
      () => `produced ${sequence.count}, handled ${child.counts().join("/")}`,
      flood(producer, sequence, { ...options, maxCount: Number.MAX_SAFE_INTEGER })
    )
    const atEnd = await child.countsNow()
    const wait = system.skipsLateCommits ? Math.min(SKIPPING_WAIT_MS, context.mode.catchUpMs) : context.mode.catchUpMs
    const reach = await child.reach(produced.committed, wait)
    const consumers = atEnd.map((count, i): ConsumerFigures => {
      const handled = reach.reached ? produced.committed : reach.counts[i]!
      const lastAt = reach.reached ? reach.at[i]! : reach.lastAt[i]!
      return {
        handled,
        deliveredPerSecond: perSecond(handled, lastAt - produced.startedAt),
        lagAtEnd: produced.committed - count,
        catchUpMs: reach.reached ? Math.max(0, (lastAt - produced.endedAt) / 1000) : Number.NaN
      }
    })
    const short = consumers.filter((c) => c.handled < produced.committed)
    const note = short.length === 0
      ? undefined
      : `${short.length} consumer(s) had not handled all ${produced.committed} after ${wait / 1000} s (least: ${Math.min(...short.map((c) => c.handled))})${system.skipsLateCommits ? "; the id > last reader skips rows that commit after a higher id" : ""}`
    return { produced, consumers, ...(note === undefined ? {} : { note }) }
  } finally {
    await producer.close()
    await child.stop()
  }
}
