/** Producer loops, each bounded by a deadline and a count. */
import { monoMicros, sleep } from "./clock.js"
import { makePayload, type Payload } from "./payload.js"
import type { Producer } from "./system.js"

/** Hands out sequence numbers across every producer loop of a run. */
export class Sequence {
  private next = 0
  take(n: number): Array<Payload> {
    const sentAt = monoMicros()
    const first = this.next
    this.next += n
    return Array.from({ length: n }, (_, i) => makePayload(first + i, sentAt))
  }
  get count() {
    return this.next
  }
}

export interface FloodOptions {
  readonly connections: number
  /** Notifications per transaction: 1 uses `send`, more use `sendBatch`. */
  readonly batch: number
  readonly durationMs: number
  /** Stop earlier once this many have been committed in total. */
  readonly maxCount: number
  readonly onProgress?: (committed: number) => void
}

export interface FloodResult {
  readonly committed: number
  /** From the first send to the last commit, in microseconds. */
  readonly elapsedUs: number
  readonly startedAt: number
  readonly endedAt: number
}

/** `connections` loops committing as fast as they can until the deadline or the count. */
export const flood = async (producer: Producer, sequence: Sequence, options: FloodOptions): Promise<FloodResult> => {
  const startedAt = monoMicros()
  const deadline = startedAt + options.durationMs * 1000
  let committed = 0
  let claimed = 0
  const loop = async (connection: number) => {
    while (monoMicros() < deadline && claimed < options.maxCount) {
      claimed += options.batch
      const payloads = sequence.take(options.batch)
      if (options.batch === 1) await producer.send(connection, payloads[0]!)
      else await producer.sendBatch(connection, payloads)
      committed += options.batch
      options.onProgress?.(committed)
    }
  }
  await Promise.all(Array.from({ length: options.connections }, (_, i) => loop(i)))
  const endedAt = monoMicros()
  return { committed, elapsedUs: endedAt - startedAt, startedAt, endedAt }
}

/**
 * One producer sending single notifications at `ratePerSecond` for `durationMs` (each waits
 * for its slot; a late one is sent at once). Returns what it sent, with when each commit returned.
 */
export const paced = async (producer: Producer, sequence: Sequence, ratePerSecond: number, durationMs: number) => {
  const intervalUs = 1e6 / ratePerSecond
  const startedAt = monoMicros()
  const total = Math.floor((durationMs / 1000) * ratePerSecond)
  const sent: Array<Payload & { readonly committedAt: number }> = []
  for (let i = 0; i < total; i++) {
    const slot = startedAt + i * intervalUs
    // Timers only, no spinning: a busy-waiting producer would take a core from the server
    // and the consumer, and inflate every system's latency. Latency is measured from the
    // actual send, so timer jitter does not count against anyone.
    const wait = slot - monoMicros()
    if (wait > 0) await sleep(Math.max(1, Math.round(wait / 1000)))
    const payload = sequence.take(1)[0]!
    await producer.send(0, payload)
    sent.push({ ...payload, committedAt: monoMicros() })
  }
  return sent
}
