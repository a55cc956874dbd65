import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Exit, Layer, Queue, Redacted, Scope } from "effect"
import * as Pg from "pg"
import { inject } from "vitest"
import * as Consumer from "../src/Consumer.js"
import type { Notification } from "../src/Notification.js"
import * as PgWatch from "../src/PgWatch.js"

export const databaseUrl = inject("databaseUrl")

const suffix = () => Math.random().toString(36).slice(2, 10)

/** A schema of its own for each test file, so files run in parallel. */
export const freshSchema = () => `t_${suffix()}`

/** Channels are database-wide: a fresh name keeps tests from waking each other. */
export const freshChannel = (name = "ch") => `${name}_${suffix()}`

export const PgLive = PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 8 })

/** Short timers so that tests finish quickly. */
export const testOptions: PgWatch.Options = {
  pollInterval: "300 millis",
  healthCheckInterval: "1 second",
  healthCheckTimeout: "1 second",
  reconnectDelay: "50 millis",
  maxReconnectDelay: "200 millis",
  shutdownTimeout: "2 seconds"
}

/** Drops the schema when the scope closes (tests leave nothing behind). */
export const dropSchemaFinally = (schema: string) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    Effect.addFinalizer(() => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`.pipe(Effect.orDie)))

/**
 * The service on a fresh, migrated schema, with its `PgClient`. The schema is dropped when the
 * layer is released, after the service (and its consumers) have stopped.
 */
export const watchLayer = (options: PgWatch.Options = {}) => {
  const schema = options.schema ?? freshSchema()
  return PgWatch.layer({ migrate: true, ...testOptions, ...options, schema }).pipe(
    Layer.provideMerge(Layer.provideMerge(Layer.scopedDiscard(dropSchemaFinally(schema)), PgLive))
  )
}

/** A raw client for what the library must not be used for: holding transactions open, forging NOTIFYs. */
export const rawClient = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Pg.Client({ connectionString: databaseUrl })
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.end().catch(() => undefined))
)

export const query = (client: Pg.Client, text: string, values: Array<unknown> = []) =>
  Effect.promise(() => client.query(text, values))

/**
 * A consumer whose handler records what it received in a queue; `handle` may fail it.
 */
export const recordingConsumer = <A = unknown, I = A>(
  options: Omit<Consumer.Options<A, I, never>, "handle"> & {
    readonly handle?: (notification: Notification<A>) => Effect.Effect<void, Consumer.HandlerError>
  }
) =>
  Effect.gen(function*() {
    const received = yield* Queue.unbounded<Notification<A>>()
    const consumer = Consumer.make<A, I>({
      ...options,
      handle: (notification) =>
        (options.handle ?? (() => Effect.void))(notification).pipe(
          Effect.zipRight(Queue.offer(received, notification))
        )
    })
    return { consumer, received }
  })

/** Runs a consumer until the returned effect is run (which stops it gracefully). */
export const start = <R>(consumer: Consumer.Consumer<R>, options: Consumer.RunOptions = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(Consumer.layer(consumer, options), scope)
    return Scope.close(scope, Exit.void)
  })

/** Takes exactly n notifications, failing if they do not arrive in time. */
export const takeN = <A>(queue: Queue.Dequeue<Notification<A>>, n: number, within: Duration.DurationInput = "10 seconds") =>
  Effect.gen(function*() {
    const taken: Array<Notification<A>> = []
    while (taken.length < n) {
      taken.push(yield* Queue.take(queue))
    }
    return taken
  }).pipe(Effect.timeoutFail({ duration: within, onTimeout: () => new Error(`expected ${n} notifications in ${Duration.format(Duration.decode(within))}`) }))

/** Asserts nothing more arrives for a while. */
export const nothingMore = <A>(queue: Queue.Dequeue<Notification<A>>, wait: Duration.DurationInput = "700 millis") =>
  Effect.gen(function*() {
    yield* Effect.sleep(wait)
    return yield* Queue.takeAll(queue)
  })
