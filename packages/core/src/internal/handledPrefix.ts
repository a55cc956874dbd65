/**
 * Which deliveries of a page may count as handled. Handlers running concurrently finish in
 * any order, but the position may only move over a run of handled deliveries from the page's
 * start: moving it past one still running would skip that one if the process stopped then.
 */
export interface HandledPrefix {
  /** Marks the delivery at `index` handled; returns how many from the start are now all handled. */
  readonly complete: (index: number) => number
}

export const make = (size: number): HandledPrefix => {
  const done = new Uint8Array(size)
  let contiguous = 0
  return {
    complete: (index) => {
      done[index] = 1
      while (contiguous < size && done[contiguous] === 1) contiguous += 1
      return contiguous
    }
  }
}
