/** Nearest-rank percentile of unsorted samples; NaN when there are none. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export interface Distribution {
  readonly n: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

export const distribution = (samples: ReadonlyArray<number>): Distribution => ({
  n: samples.length,
  p50: percentile(samples, 50),
  p95: percentile(samples, 95),
  p99: percentile(samples, 99),
  max: samples.length === 0 ? Number.NaN : Math.max(...samples)
})

/** Events per second for `count` events over `micros` microseconds. */
export const perSecond = (count: number, micros: number) => (micros > 0 ? (count * 1e6) / micros : Number.NaN)
