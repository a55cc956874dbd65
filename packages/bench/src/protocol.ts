/** Messages between the bench (parent) and a consumer child process. */
import type { Topic } from "./system.js"

/** What the child is told on its command line. */
export interface ChildArgs {
  readonly system: string
  readonly url: string
  readonly topic: Topic
  /** Report every handled notification (seq and times) instead of only counting. */
  readonly echo: boolean
}

export type ToChild =
  | { readonly type: "start" }
  /** Answer `reached` once every consumer has handled `target` notifications, or `timeout`. */
  | { readonly type: "await"; readonly target: number; readonly timeoutMs: number }
  | { readonly type: "counts" }
  | { readonly type: "stop" }

export type FromChild =
  | { readonly type: "loaded"; readonly rssKb: number }
  /** `at` in monoMicros: when consumption was asked to start, and when it was running. */
  | { readonly type: "started"; readonly startAt: number; readonly runningAt: number }
  /** Per-consumer handled counts: every 250 ms, and in answer to `counts`. */
  | { readonly type: "progress"; readonly counts: ReadonlyArray<number> }
  | { readonly type: "handled"; readonly seq: number; readonly mono: number; readonly wall: number }
  /** When each consumer reached the target (monoMicros). */
  | { readonly type: "reached"; readonly at: ReadonlyArray<number> }
  /** Counts, and when each consumer last handled one (monoMicros). */
  | { readonly type: "timeout"; readonly counts: ReadonlyArray<number>; readonly lastAt: ReadonlyArray<number> }
  | { readonly type: "stopped"; readonly maxRssKb: number }
  | { readonly type: "failed"; readonly message: string }
