/**
 * A consumer child process: runs one system's consumers with a no-op handler that only counts
 * (or, in echo mode, reports each notification's seq and handler start time), and answers the
 * bench over IPC. Running consumers in their own process keeps them off the producers' event
 * loop and lets the bench read their peak RSS.
 */
import { monoMicros, wallMicros } from "./clock.js"
import { seqOf } from "./payload.js"
import type { ChildArgs, FromChild, ToChild } from "./protocol.js"
import type { Consumers } from "./system.js"
import * as Systems from "./systems/index.js"

const PROGRESS_MS = 250

const send = (message: FromChild) => process.send?.(message)

const args: ChildArgs = JSON.parse(process.argv[2] ?? "{}")
const system = await Systems.load(args.system)
const counts = new Array<number>(args.topic.consumers).fill(0)
const reachedAt = new Array<number>(args.topic.consumers).fill(0)
const lastAt = new Array<number>(args.topic.consumers).fill(0)
let target = Number.POSITIVE_INFINITY
let waiting = 0
let timer: NodeJS.Timeout | undefined
let consumers: Consumers | undefined

const answerIfReached = () => {
  if (waiting === 0 || reachedAt.some((at) => at === 0)) return
  waiting = 0
  clearTimeout(timer)
  send({ type: "reached", at: [...reachedAt] })
}

const onHandled = (consumer: number, payload: unknown) => {
  const mono = monoMicros()
  counts[consumer]! += 1
  lastAt[consumer] = mono
  if (args.echo) send({ type: "handled", seq: seqOf(payload), mono, wall: wallMicros() })
  if (counts[consumer] === target) {
    reachedAt[consumer] = mono
    answerIfReached()
  }
}

const stop = async () => {
  clearTimeout(timer)
  await Promise.race([consumers?.stop(), new Promise((resolve) => setTimeout(resolve, 15_000).unref())])
  send({ type: "stopped", maxRssKb: process.resourceUsage().maxRSS })
  process.disconnect?.()
  process.exit(0)
}

process.on("message", (message: ToChild) => {
  switch (message.type) {
    case "start": {
      const startAt = monoMicros()
      system.consume(args.url, args.topic, onHandled).then(
        (running) => {
          consumers = running
          send({ type: "started", startAt, runningAt: monoMicros() })
        },
        (error: unknown) => send({ type: "failed", message: String(error) })
      )
      break
    }
    case "await": {
      target = message.target
      waiting = 1
      counts.forEach((count, i) => (reachedAt[i] = count >= target ? lastAt[i]! : 0))
      timer = setTimeout(() => {
        waiting = 0
        send({ type: "timeout", counts: [...counts], lastAt: [...lastAt] })
      }, message.timeoutMs)
      answerIfReached()
      break
    }
    case "counts":
      send({ type: "progress", counts: [...counts] })
      break
    case "stop":
      void stop()
  }
})

setInterval(() => send({ type: "progress", counts: [...counts] }), PROGRESS_MS).unref()
process.on("disconnect", () => process.exit(0))
send({ type: "loaded", rssKb: Math.round(process.memoryUsage().rss / 1024) })
