/** Progress lines on stderr, so stdout holds only the results table. */
const started = Date.now()

const stamp = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`

export const log = (line: string) => process.stderr.write(`${stamp()} ${line}\n`)

/** Calls `sample` every second while `work` runs, printing what it returns. */
export const watching = async <A>(label: string, sample: () => string, work: Promise<A>): Promise<A> => {
  const timer = setInterval(() => log(`  ${label}: ${sample()}`), 1000)
  try {
    return await work
  } finally {
    clearInterval(timer)
  }
}

/** Metrics on one line. */
export const figures = (metrics: Readonly<Record<string, number>>) =>
  Object.entries(metrics)
    .map(([name, value]) => `${name}=${Number.isFinite(value) ? (Math.abs(value) >= 100 ? Math.round(value) : value.toFixed(2)) : "n/a"}`)
    .join(" ")
