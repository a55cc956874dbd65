/** The bench's side of a consumer child process (see consumerProcess.ts). */
import { fork, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { ChildArgs, FromChild, ToChild } from "./protocol.js"

// Compiled (npm run bench runs dist/), children run the compiled library as an app would;
// from the TypeScript sources they go through tsx with the workspace's "source" condition.
const compiled = import.meta.url.endsWith(".js")
const script = fileURLToPath(new URL(compiled ? "./consumerProcess.js" : "./consumerProcess.ts", import.meta.url))
const loaderFlags = compiled ? [] : ["--conditions=source", "--import", "tsx"]

export type Reach =
  | { readonly reached: true; readonly at: ReadonlyArray<number> }
  | { readonly reached: false; readonly counts: ReadonlyArray<number>; readonly lastAt: ReadonlyArray<number> }

export interface ConsumerChild {
  readonly pid: number
  /** RSS once the child had loaded its modules, before consuming (kB). */
  readonly loadedRssKb: number
  /** When consumption was asked to start and when it was running (monoMicros). */
  readonly start: () => Promise<{ readonly startAt: number; readonly runningAt: number }>
  /**
   * Waits until every consumer has handled `target` notifications: when each got there, or on
   * time-out how far each got and when it last handled one.
   */
  readonly reach: (target: number, timeoutMs: number) => Promise<Reach>
  /** Latest per-consumer counts (updated every 250 ms). */
  readonly counts: () => ReadonlyArray<number>
  /** Per-consumer counts now. */
  readonly countsNow: () => Promise<ReadonlyArray<number>>
  /** Called for every handled notification, in echo mode. */
  readonly onHandled: (listener: (seq: number, mono: number, wall: number) => void) => void
  /** Stops the consumers and the process; returns its peak RSS in kB. */
  readonly stop: () => Promise<number>
}

/** Extra node flags for children, e.g. BENCH_CHILD_FLAGS="--cpu-prof --cpu-prof-dir=prof". */
const extraFlags = () => (process.env.BENCH_CHILD_FLAGS ?? "").split(" ").filter((flag) => flag !== "")

export const spawn = async (args: ChildArgs): Promise<ConsumerChild> => {
  const child: ChildProcess = fork(script, [JSON.stringify(args)], {
    execArgv: [...loaderFlags, ...extraFlags()],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  let counts: ReadonlyArray<number> = new Array<number>(args.topic.consumers).fill(0)
  let handled: ((seq: number, mono: number, wall: number) => void) | undefined
  const waiters = new Set<(message: FromChild) => boolean>()
  let exited = false

  child.on("message", (message: FromChild) => {
    if (message.type === "progress") counts = message.counts
    else if (message.type === "handled") handled?.(message.seq, message.mono, message.wall)
    for (const waiter of waiters) if (waiter(message)) waiters.delete(waiter)
  })
  const exit = new Promise<void>((resolve) => child.once("exit", () => {
    exited = true
    resolve()
  }))

  /** The next message of one of these types, or a failure if the child fails or exits first. */
  const next = <T extends FromChild["type"]>(types: ReadonlyArray<T>, timeoutMs: number) =>
    new Promise<Extract<FromChild, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumer child (${args.system}) sent none of ${types.join(", ")} in ${timeoutMs} ms`)), timeoutMs)
      const settle = (message: FromChild) => {
        if (message.type === "failed") {
          clearTimeout(timer)
          reject(new Error(`consumer child (${args.system}) failed: ${message.message}`))
          return true
        }
        if (!(types as ReadonlyArray<string>).includes(message.type)) return false
        clearTimeout(timer)
        resolve(message as Extract<FromChild, { type: T }>)
        return true
      }
      waiters.add(settle)
      void exit.then(() => {
        if (waiters.delete(settle)) {
          clearTimeout(timer)
          reject(new Error(`consumer child (${args.system}) exited`))
        }
      })
    })

  const tell = (message: ToChild) => {
    if (!exited) child.send(message)
  }

  const loaded = await next(["loaded"], 30_000)
  return {
    pid: child.pid ?? 0,
    loadedRssKb: loaded.rssKb,
    start: async () => {
      const started = next(["started"], 60_000)
      tell({ type: "start" })
      return started
    },
    reach: async (target, timeoutMs) => {
      const answer = next(["reached", "timeout"], timeoutMs + 5_000)
      tell({ type: "await", target, timeoutMs })
      const message = await answer
      if (message.type === "timeout") {
        counts = message.counts
        return { reached: false, counts: message.counts, lastAt: message.lastAt }
      }
      return { reached: true, at: message.at }
    },
    counts: () => counts,
    countsNow: async () => {
      const answer = next(["progress"], 5_000)
      tell({ type: "counts" })
      return (await answer).counts
    },
    onHandled: (listener) => {
      handled = listener
    },
    stop: async () => {
      const stopped = next(["stopped"], 20_000).catch(() => undefined)
      tell({ type: "stop" })
      const message = await stopped
      // Let it exit by itself (a --cpu-prof child writes its profile then), but not for ever.
      const timer = setTimeout(() => child.kill("SIGKILL"), message === undefined ? 0 : 10_000)
      await exit
      clearTimeout(timer)
      return message?.maxRssKb ?? Number.NaN
    }
  }
}
