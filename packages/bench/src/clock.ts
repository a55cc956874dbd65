/**
 * Clocks that agree across processes on one machine.
 *
 * `monoMicros` reads CLOCK_MONOTONIC (what `process.hrtime` uses on Linux), which every process
 * shares, so a producer and a consumer child can subtract each other's readings. `wallMicros` is
 * the wall clock with sub-millisecond precision, comparable with PostgreSQL's `now()`.
 */
export const monoMicros = (): number => Number(process.hrtime.bigint() / 1000n)

export const wallMicros = (): number => (performance.timeOrigin + performance.now()) * 1000

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
