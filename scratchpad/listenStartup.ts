/**
 * Start-up cost of LISTEN (issue #15): how long `n` subscriptions to distinct channels, made
 * at once on one listener whose connection is up, take to return (each has its LISTEN done),
 * and how long closing them takes (UNLISTEN). Run against this listener and, to compare in
 * the same run, against other builds of `internal/listener.ts` given as module paths:
 *
 *   git archive main packages/core/src | tar -x -C /tmp/old
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
 *     npx tsx --conditions=source scratchpad/listenStartup.ts 500 /tmp/old/packages/core/src/internal/listener.ts
 */
import { Console, Duration, Effect, Exit, Scope } from "effect"
import * as NodeCrypto from "node:crypto"
import { pathToFileURL } from "node:url"
import * as Pg from "pg"
import * as Listener from "../packages/core/src/internal/listener.js"

const n = Number(process.argv[2] ?? 500)
const others = process.argv.slice(3)
const url = process.env.PGWATCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const rounds = 3

type Make = typeof Listener.make

const measure = (name: string, make: Make) =>
  Effect.gen(function*() {
    const sender = new Pg.Client({ connectionString: url })
    yield* Effect.promise(() => sender.connect())
    const scope = yield* Scope.make()
    const listener = yield* make({
      connect: () => new Pg.Client({ connectionString: url }),
      sendProbe: (channel, payload) => Effect.promise(() => sender.query("SELECT pg_notify($1, $2)", [channel, payload])),
      fetchKey: Effect.succeed(NodeCrypto.randomBytes(32)),
      schema: "listen_startup",
      healthCheckInterval: Duration.minutes(10),
      healthCheckTimeout: Duration.seconds(10),
      reconnectDelay: Duration.millis(100),
      maxReconnectDelay: Duration.seconds(1),
      fallbackPollInterval: Duration.seconds(1)
    }).pipe(Scope.extend(scope))
    // The connection opens with the first subscription: not part of what is measured.
    yield* listener.subscribe([]).pipe(Scope.extend(scope))
    const subscriptions = yield* Scope.fork(scope, { _tag: "Sequential" })
    const prefix = `startup_${NodeCrypto.randomBytes(4).toString("hex")}_`
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => `${prefix}${i}`),
      (channel) => listener.subscribe([channel]).pipe(Scope.extend(subscriptions)),
      { concurrency: "unbounded", discard: true }
    )
    const subscribed = performance.now() - started
    const closing = performance.now()
    yield* Scope.close(subscriptions, Exit.void)
    const closed = performance.now() - closing
    yield* Scope.close(scope, Exit.void)
    yield* Effect.promise(() => sender.end())
    yield* Console.log(
      `${name.padEnd(40)} ${n} subscribe() at once: ${subscribed.toFixed(1).padStart(8)} ms ` +
        `(${(subscribed / n).toFixed(3)} ms each); closing them: ${closed.toFixed(1).padStart(8)} ms`
    )
  })

const program = Effect.gen(function*() {
  const builds: Array<[string, Make]> = [["this branch", Listener.make]]
  for (const path of others) {
    const module = (yield* Effect.promise(() => import(pathToFileURL(path).href))) as { readonly make: Make }
    builds.push([path, module.make])
  }
  for (let round = 1; round <= rounds; round++) {
    for (const [name, make] of builds) yield* measure(name, make)
  }
})

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
