/**
 * What one Effect hop costs on this machine: the time from a socket's `data` callback (where
 * `pg` emits `notification`) to code running in a fiber that waits for it, against plain
 * JavaScript's ways of deferring work. Each case is timed `rounds` times, one event at a time.
 *
 *   npx tsx scratchpad/effectHop.ts [rounds=20000]
 *
 * Effect 3's default scheduler (`MixedScheduler(2048)`) runs woken fibers from a microtask
 * (`Promise.resolve().then`); after 2,048 drains in a row without going idle it waits for a
 * `setTimeout(0)` (>= 1 ms) instead. Its runners are kept per fiber, so two fibers handing
 * work to each other do not pile up drains: the last case ping-pongs between two fibers with
 * the default scheduler and with that fallback out of reach, to show whether it ever bites.
 */
import { Deferred, Effect, Fiber, Queue, Scheduler, Stream } from "effect"
import * as Net from "node:net"

const rounds = Number(process.argv[2] ?? 20_000)

const show = (name: string, samples: Array<number>) => {
  samples.sort((a, b) => a - b)
  const at = (p: number) => (samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]! * 1000).toFixed(2)
  console.log(`${name.padEnd(58)} p50 ${at(0.5).padStart(7)} µs  p99 ${at(0.99).padStart(7)} µs  max ${at(1).padStart(9)} µs`)
}

/** A local socket pair: `ping()` makes the client's `data` callback run once. */
const socketPair = async () => {
  let serverSide: Net.Socket | undefined
  const server = Net.createServer((socket) => (serverSide = socket))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const client = Net.connect((server.address() as Net.AddressInfo).port, "127.0.0.1")
  await new Promise<void>((resolve) => client.once("connect", resolve))
  while (serverSide === undefined) await new Promise((resolve) => setImmediate(resolve))
  client.setNoDelay(true)
  return {
    client,
    ping: () => serverSide!.write("x"),
    close: () => {
      client.destroy()
      serverSide!.destroy()
      server.close()
    }
  }
}

/**
 * Runs `rounds` events: each `ping` fires the socket callback, which takes the time and calls
 * `deliver(t0, done)`; `done(t1)` must be called where the receiving code starts.
 */
const time = async (
  name: string,
  deliver: (t0: number, done: (t1: number) => void) => void
) => {
  const pair = await socketPair()
  const samples: Array<number> = []
  let resolveRound: (() => void) | undefined
  pair.client.on("data", () => {
    const t0 = performance.now()
    deliver(t0, (t1) => {
      samples.push(t1 - t0)
      resolveRound?.()
    })
  })
  for (let i = 0; i < rounds; i++) {
    const round = new Promise<void>((resolve) => (resolveRound = resolve))
    pair.ping()
    await round
  }
  pair.close()
  show(name, samples.slice(Math.min(1000, rounds / 10)))
}

const main = async () => {
  console.log(`${rounds} events each, from a socket's data callback to the receiving code (Node ${process.version})`)
  await time("direct call (the floor row's handler)", (_, done) => done(performance.now()))
  await time("queueMicrotask", (_, done) => queueMicrotask(() => done(performance.now())))
  await time("Promise.resolve().then", (_, done) => void Promise.resolve().then(() => done(performance.now())))
  await time("setImmediate", (_, done) => setImmediate(() => done(performance.now())))
  await time("setTimeout(0)", (_, done) => setTimeout(() => done(performance.now()), 0))

  // Effect: a fiber waiting in Queue.take, woken by Queue.unsafeOffer in the callback (the
  // listener's `incoming` queue).
  {
    let done: ((t1: number) => void) | undefined
    const queue = Effect.runSync(Queue.unbounded<number>())
    const fiber = Effect.runFork(Effect.forever(Effect.flatMap(Queue.take(queue), () => Effect.sync(() => done!(performance.now())))))
    await time("Effect: Queue.unsafeOffer -> fiber in Queue.take", (_, d) => {
      done = d
      queue.unsafeOffer(0)
    })
    await Effect.runPromise(Fiber.interrupt(fiber))
  }
  // Two hops: callback -> fiber A (the listener's route loop) -> Queue.offer -> fiber B (a
  // subscriber's reader).
  {
    let done: ((t1: number) => void) | undefined
    const incoming = Effect.runSync(Queue.unbounded<number>())
    const events = Effect.runSync(Queue.bounded<number>(1000))
    const a = Effect.runFork(Effect.forever(Effect.flatMap(Queue.take(incoming), (n) => Queue.offer(events, n))))
    const b = Effect.runFork(Effect.forever(Effect.flatMap(Queue.take(events), () => Effect.sync(() => done!(performance.now())))))
    await time("Effect: two hops (route fiber, then the subscriber's fiber)", (_, d) => {
      done = d
      incoming.unsafeOffer(0)
    })
    await Effect.runPromise(Fiber.interrupt(a).pipe(Effect.zipRight(Fiber.interrupt(b))))
  }
  // A Stream over the queue consumed by runForEach (a stream stage between queue and handler).
  {
    let done: ((t1: number) => void) | undefined
    const queue = Effect.runSync(Queue.unbounded<number>())
    const fiber = Effect.runFork(Stream.fromQueue(queue).pipe(Stream.runForEach(() => Effect.sync(() => done!(performance.now())))))
    await time("Effect: Stream.fromQueue -> runForEach", (_, d) => {
      done = d
      queue.unsafeOffer(0)
    })
    await Effect.runPromise(Fiber.interrupt(fiber))
  }
  {
    let done: ((t1: number) => void) | undefined
    const deferreds: Array<Deferred.Deferred<void>> = []
    const waiter = Effect.runFork(Effect.forever(Effect.gen(function*() {
      const deferred = yield* Deferred.make<void>()
      deferreds.push(deferred)
      yield* Deferred.await(deferred)
      done!(performance.now())
    })))
    await time("Effect: Deferred.unsafeDone -> fiber in Deferred.await", (_, d) => {
      done = d
      Deferred.unsafeDone(deferreds.shift()!, Effect.void)
    })
    await Effect.runPromise(Fiber.interrupt(waiter))
  }
  await time("Effect.runFork of a new fiber per event", (_, done) => {
    Effect.runFork(Effect.sync(() => done(performance.now())))
  })

  // Back-to-back hops without going idle, with the default scheduler and with one that never
  // falls back to setTimeout.
  for (const [name, scheduler] of [
    ["default scheduler", Scheduler.defaultScheduler],
    ["no setTimeout fallback", new Scheduler.MixedScheduler(Number.MAX_SAFE_INTEGER)]
  ] as const) {
    const n = 20_000
    const hops = new Float64Array(n)
    const ping = Effect.runSync(Queue.unbounded<number>())
    const pong = Effect.runSync(Queue.unbounded<number>())
    const echo = Effect.runFork(
      Effect.forever(Effect.flatMap(Queue.take(ping), (t) => Queue.offer(pong, t))).pipe(Effect.withScheduler(scheduler))
    )
    await Effect.runPromise(Effect.gen(function*() {
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        yield* Queue.offer(ping, t0)
        yield* Queue.take(pong)
        hops[i] = performance.now() - t0
      }
    }).pipe(Effect.withScheduler(scheduler)))
    await Effect.runPromise(Fiber.interrupt(echo))
    // A setTimeout(0) waits at least 1 ms: the round trips that took that long.
    const slow = [...hops].filter((hop) => hop >= 0.9).length
    show(`Effect: ${n} round trips between two fibers (${name})`, [...hops])
    console.log(`  ${slow} took >= 0.9 ms`)
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
