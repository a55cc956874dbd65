/** Messages between the scale scenario and its child process (scaleProcess.ts). */

export interface ScaleArgs {
  readonly url: string
  readonly schema: string
  readonly poolSize: number
  readonly consumers: ReadonlyArray<{ readonly id: string; readonly channels: ReadonlyArray<string> }>
}

export type ToScale = { readonly type: "cpu" } | { readonly type: "counts" } | { readonly type: "stop" }

export type FromScale =
  /**
   * The consumers are all listening: `ms` after the layer began building, having used `cpuMs`
   * of CPU (which, unlike `ms`, other load on the machine does not stretch); memory then.
   */
  | { readonly type: "started"; readonly ms: number; readonly cpuMs: number; readonly rssKb: number; readonly heapKb: number }
  /** The process's CPU time (user + system, µs) and statements sent so far, at `at` (performance.now, ms). */
  | { readonly type: "cpu"; readonly us: number; readonly at: number; readonly statements: number }
  | { readonly type: "counts"; readonly counts: ReadonlyArray<number> }
  | { readonly type: "stopped" }
  | { readonly type: "failed"; readonly message: string }
