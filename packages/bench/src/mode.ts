/** Sizes and durations of a run: quick (the default, under 3 minutes) or full (`--full`). */
export interface Mode {
  readonly name: "quick" | "full"
  /** Producing time of each live-throughput step. */
  readonly liveMs: number
  /** Longest wait for consumers to catch up after producers stop. */
  readonly catchUpMs: number
  readonly latencyWarmUp: number
  readonly latencyCount: number
  /** Longest time the sequential latency step may take per system. */
  readonly latencyBudgetMs: number
  readonly pacedRate: number
  readonly pacedMs: number
  readonly backlog: number
  readonly drainTimeoutMs: number
  readonly fanOut: ReadonlyArray<number>
  readonly fanOutMs: number
  readonly notifyCostMs: number
  /** Scale: rows of the backlog each channel-count step drains (a multiple of 100). */
  readonly scaleDrainRows: number
  /** Scale: the window over which idle consumers' CPU and queries are measured. */
  readonly scaleIdleMs: number
  /** Scale: producing time of each fan-out step. */
  readonly scaleProducingMs: number
}

export const quick: Mode = {
  name: "quick",
  liveMs: 750,
  catchUpMs: 5_000,
  latencyWarmUp: 20,
  latencyCount: 200,
  latencyBudgetMs: 3_000,
  pacedRate: 500,
  pacedMs: 1_000,
  backlog: 100_000,
  drainTimeoutMs: 12_000,
  fanOut: [1, 4, 16],
  fanOutMs: 750,
  notifyCostMs: 750,
  scaleDrainRows: 50_000,
  scaleIdleMs: 20_000,
  scaleProducingMs: 3_000
}

export const full: Mode = {
  name: "full",
  liveMs: 10_000,
  catchUpMs: 120_000,
  latencyWarmUp: 100,
  latencyCount: 1000,
  latencyBudgetMs: 120_000,
  pacedRate: 500,
  pacedMs: 10_000,
  backlog: 1_000_000,
  drainTimeoutMs: 600_000,
  fanOut: [1, 4, 16],
  fanOutMs: 10_000,
  notifyCostMs: 10_000,
  scaleDrainRows: 100_000,
  scaleIdleMs: 60_000,
  scaleProducingMs: 10_000
}
