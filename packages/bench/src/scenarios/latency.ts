/**
 * Scenario 2, latency, with one consumer reporting every handler start.
 *
 * Sequential: after a warm-up, single notifications one at a time, each sent once the previous
 * was handled; latency = the producer's commit returning -> the handler starting.
 * Paced: one producer at a fixed rate; latency = transaction start -> handler start, where the
 * transaction start is the producer's clock just before it sent the one-statement transaction
 * (same for every system) and, where the system keeps its rows, also the row's `created_at`.
 */
import { monoMicros } from "../clock.js"
import * as Progress from "../progress.js"
import { paced, Sequence } from "../producers.js"
import { startConsumers, type Context, type Row } from "../scenario.js"
import { distribution, type Distribution } from "../stats.js"
import type { System } from "../system.js"

/** Longest wait for one notification to be handled. */
const ONE_TIMEOUT_MS = 5_000

const millis = (d: Distribution, prefix = "") => ({
  [`${prefix}p50_ms`]: d.p50 / 1000,
  [`${prefix}p95_ms`]: d.p95 / 1000,
  [`${prefix}p99_ms`]: d.p99 / 1000,
  [`${prefix}max_ms`]: d.max / 1000
})

const runSystem = async (context: Context, system: System): Promise<Array<Row>> => {
  const { mode } = context
  const url = context.urlOf(system)
  const topic = await context.topic(system, "latency", 1)
  const { child } = await startConsumers(context, system, topic, true)
  const producer = await system.producer(url, topic, 1)
  const handled = new Map<number, { readonly mono: number; readonly wall: number }>()
  let waiter: { readonly seq: number; readonly resolve: () => void } | undefined
  child.onHandled((seq, mono, wall) => {
    handled.set(seq, { mono, wall })
    if (waiter?.seq === seq) waiter.resolve()
  })
  const sequence = new Sequence()
  try {
    // Sequential: commit returned -> handler start.
    const samples: Array<number> = []
    const startedAt = monoMicros()
    const deadline = startedAt + mode.latencyBudgetMs * 1000
    // Warm-up: a number of notifications, or a quarter of the budget for slow pollers.
    const warmUpUntil = startedAt + mode.latencyBudgetMs * 250
    let warmUp = mode.latencyWarmUp
    let timedOut = false
    while (samples.length < mode.latencyCount && monoMicros() < deadline) {
      const payload = sequence.take(1)[0]!
      const seen = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ONE_TIMEOUT_MS)
        waiter = { seq: payload.seq, resolve: () => (clearTimeout(timer), resolve(true)) }
      })
      await producer.send(0, payload)
      const committedAt = monoMicros()
      if (!handled.has(payload.seq) && !(await seen)) {
        timedOut = true
        break
      }
      if (warmUp > 0 && monoMicros() < warmUpUntil) warmUp -= 1
      else samples.push(handled.get(payload.seq)!.mono - committedAt)
    }
    const sequential = distribution(samples)
    const sequentialNote = [
      sequential.n < mode.latencyCount ? `${sequential.n} of ${mode.latencyCount} samples within the ${mode.latencyBudgetMs / 1000} s budget` : undefined,
      timedOut ? `a notification was not handled within ${ONE_TIMEOUT_MS / 1000} s` : undefined
    ].filter((s) => s !== undefined).join("; ")
    const rows: Array<Row> = [{
      scenario: "latency",
      variant: "sequential: commit -> handler",
      system: system.name,
      metrics: { n: sequential.n, ...millis(sequential) },
      ...(sequentialNote === "" ? {} : { note: sequentialNote })
    }]
    Progress.log(`  ${system.name} sequential: ${Progress.figures(rows[0]!.metrics)}`)

    // Paced: transaction start -> handler start.
    const sent = await paced(producer, sequence, mode.pacedRate, mode.pacedMs)
    const reach = await child.reach(sequence.count, mode.catchUpMs)
    const fromSend = sent.flatMap((p) => {
      const at = handled.get(p.seq)
      return at === undefined ? [] : [at.mono - p.sentAt]
    })
    const createdAt = await system.createdAt?.(url, topic)
    const fromCreated = createdAt === undefined ? [] : sent.flatMap((p) => {
      const at = handled.get(p.seq)
      const created = createdAt.get(p.seq)
      return at === undefined || created === undefined ? [] : [at.wall - created]
    })
    // The commit alone (send -> commit returned): a floor under any tx start -> handler figure.
    const commit = distribution(sent.map((p) => p.committedAt - p.sentAt))
    const pacedRow: Row = {
      scenario: "latency",
      variant: `paced ${mode.pacedRate}/s: tx start -> handler`,
      system: system.name,
      metrics: {
        n: fromSend.length,
        ...millis(distribution(fromSend)),
        commit_p50_ms: commit.p50 / 1000,
        commit_p99_ms: commit.p99 / 1000,
        ...(createdAt === undefined ? {} : millis(distribution(fromCreated), "created_at_"))
      },
      ...(reach.reached ? {} : { note: `${sent.length - fromSend.length} of ${sent.length} not handled within ${mode.catchUpMs / 1000} s` })
    }
    Progress.log(`  ${system.name} paced: ${Progress.figures(pacedRow.metrics)}`)
    return [...rows, pacedRow]
  } finally {
    await producer.close()
    await child.stop()
  }
}

export const run = async (context: Context): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const system of context.systems) rows.push(...await runSystem(context, system))
  return rows
}
