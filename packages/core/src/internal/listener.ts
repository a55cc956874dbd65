import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Pg from "pg"
import { PgWatchError } from "../PgWatchError.js"

/**
 * What a subscriber hears from the listen connection. `Listening` comes once its channels are
 * LISTENed on a (new) connection, with that connection's backend pid: whatever was written
 * before may have been missed, so the subscriber catches up from the log.
 */
export type ListenerEvent =
  | { readonly _tag: "Wake"; readonly channel: string; readonly redelivery: boolean }
  | { readonly _tag: "Listening"; readonly pid: number }
  | { readonly _tag: "Lost"; readonly reason: string }

export interface ListenerOptions {
  /** Opens a new connection; a fresh `pg.Client` each call. */
  readonly connect: () => Pg.Client
  /** The schema whose wake-ups to accept (payload `{"pgwatch":1,"schema":...}`). */
  readonly schema: string
  readonly healthCheckInterval: Duration.Duration
  readonly healthCheckTimeout: Duration.Duration
  readonly reconnectDelay: Duration.Duration
  readonly maxReconnectDelay: Duration.Duration
}

export interface Listener {
  /**
   * Listens on the channels for as long as the scope is open. The first subscription opens
   * the connection (so one-shot uses of the service never do) and returns once that first
   * attempt has succeeded or failed.
   */
  readonly subscribe: (channels: ReadonlyArray<string>) => Effect.Effect<Queue.Dequeue<ListenerEvent>, never, Scope.Scope>
}

interface Subscriber {
  readonly channels: ReadonlySet<string>
  readonly events: Queue.Queue<ListenerEvent>
}

interface Connection {
  readonly client: Pg.Client
  readonly pid: number
  /** Fails when the connection breaks; the serve loop then reconnects. */
  readonly broken: Deferred.Deferred<never, PgWatchError>
}

const listenerError = (message: string, cause?: unknown) =>
  new PgWatchError({ reason: "Listener", message, cause })

/**
 * One dedicated LISTEN connection shared by every subscriber of a process. Its health is
 * checked on a timer (`pg_listening_channels()` under a time-out) because a half-open socket
 * gives no error at all; on any failure it reconnects with backoff and tells subscribers,
 * who then catch up from the log. Timers use `Clock`, so tests drive them with `TestClock`.
 */
export const make = (options: ListenerOptions): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    const subscribers = new Set<Subscriber>()
    const current = yield* Ref.make<Connection | undefined>(undefined)
    // LISTEN/UNLISTEN and (re)connection take turns, so a subscriber is never half-registered.
    const lock = yield* Effect.makeSemaphore(1)
    const incoming = yield* Queue.unbounded<Pg.Notification>()
    const firstAttempt = yield* Deferred.make<void>()

    const broadcast = (event: ListenerEvent) =>
      Effect.forEach(subscribers, (s) => Queue.offer(s.events, event), { discard: true })

    const run = (connection: Connection, statement: string) =>
      Effect.tryPromise({
        try: () => connection.client.query(statement),
        catch: (cause) => listenerError(`"${statement}" failed on the listen connection`, cause)
      }).pipe(Effect.tapError((error) => Deferred.fail(connection.broken, error)))

    const listen = (connection: Connection, channels: Iterable<string>) =>
      Effect.forEach(channels, (channel) => run(connection, `LISTEN ${Pg.escapeIdentifier(channel)}`), { discard: true })

    const listenedChannels = () => new Set([...subscribers].flatMap((s) => [...s.channels]))

    const open = Effect.acquireRelease(
      Effect.gen(function*() {
        const client = options.connect()
        const broken = yield* Deferred.make<never, PgWatchError>()
        const fail = (message: string) => (cause?: unknown) =>
          Deferred.unsafeDone(broken, Effect.fail(listenerError(message, cause)))
        client.on("error", fail("the listen connection failed"))
        client.on("end", fail("the listen connection was closed"))
        client.on("notification", (message) => Queue.unsafeOffer(incoming, message))
        yield* Effect.tryPromise({
          try: () => client.connect(),
          catch: (cause) => listenerError("cannot open the listen connection", cause)
        }).pipe(Effect.onInterrupt(() => Effect.sync(() => destroy(client))))
        const pid = (client as unknown as { processID: number }).processID
        return { client, pid, broken } satisfies Connection
      }),
      ({ client }) => close(client)
    )

    // One connection's life: LISTEN everything, report, then check health until it breaks.
    const serve = Effect.scoped(Effect.gen(function*() {
      const connection = yield* open
      yield* lock.withPermits(1)(Effect.gen(function*() {
        yield* listen(connection, listenedChannels())
        yield* Ref.set(current, connection)
        yield* broadcast({ _tag: "Listening", pid: connection.pid })
      }))
      yield* Deferred.succeed(firstAttempt, undefined)
      const check = run(connection, "SELECT pg_listening_channels()").pipe(
        Effect.timeoutFail({
          duration: options.healthCheckTimeout,
          onTimeout: () =>
            listenerError(`the listen connection did not answer a health check in ${Duration.format(options.healthCheckTimeout)}`)
        }),
        Effect.delay(options.healthCheckInterval),
        Effect.forever
      )
      return yield* Effect.raceFirst(check, Deferred.await(connection.broken))
    }))

    // Reconnects forever; the backoff starts over once a connection has been established.
    const supervise = Effect.gen(function*() {
      let failures = 0
      for (;;) {
        const exit = yield* Effect.exit(serve)
        yield* Deferred.succeed(firstAttempt, undefined)
        const established = (yield* Ref.getAndSet(current, undefined)) !== undefined
        failures = established ? 1 : failures + 1
        const reason = exit._tag === "Failure" ? Cause.pretty(exit.cause) : "closed"
        yield* broadcast({ _tag: "Lost", reason })
        const delay = yield* backoff(options, failures)
        yield* Effect.logWarning(`pgwatch: listen connection lost, reconnecting in ${Duration.format(delay)}`).pipe(
          Effect.annotateLogs("reason", reason)
        )
        yield* Effect.sleep(delay)
      }
    })

    const route = (message: Pg.Notification) => {
      const verdict = classify(message.payload, options.schema)
      if (verdict === "ours" || verdict === "ours, redelivery") {
        const event: ListenerEvent = { _tag: "Wake", channel: message.channel, redelivery: verdict !== "ours" }
        return Effect.forEach(subscribers, (s) =>
          s.channels.has(message.channel) ? Queue.offer(s.events, event) : Effect.void, { discard: true })
      }
      if (verdict === "other-schema") return Effect.void
      return Effect.logWarning(`pgwatch: ignored a NOTIFY on channel "${message.channel}": ${verdict}`).pipe(
        Effect.annotateLogs("payload", (message.payload ?? "").slice(0, 200))
      )
    }

    const scope = yield* Effect.scope
    const startOnce = yield* Effect.once(Effect.gen(function*() {
      yield* Effect.forkIn(Effect.forever(Effect.flatMap(Queue.take(incoming), route)), scope)
      yield* Effect.forkIn(supervise, scope)
      yield* Deferred.await(firstAttempt)
    }))

    const subscribe = (channels: ReadonlyArray<string>) =>
      Effect.zipRight(startOnce, Effect.acquireRelease(
        lock.withPermits(1)(Effect.gen(function*() {
          const subscriber: Subscriber = { channels: new Set(channels), events: yield* Queue.sliding<ListenerEvent>(256) }
          const fresh = channels.filter((channel) => !listenedChannels().has(channel))
          subscribers.add(subscriber)
          const connection = yield* Ref.get(current)
          if (connection !== undefined) {
            // A failed LISTEN breaks the connection; the reconnect then LISTENs and reports.
            yield* listen(connection, fresh).pipe(
              Effect.zipRight(Queue.offer(subscriber.events, { _tag: "Listening", pid: connection.pid })),
              Effect.ignore
            )
          }
          return subscriber
        })),
        (subscriber) =>
          lock.withPermits(1)(Effect.gen(function*() {
            subscribers.delete(subscriber)
            const connection = yield* Ref.get(current)
            const remaining = listenedChannels()
            const unused = [...subscriber.channels].filter((channel) => !remaining.has(channel))
            if (connection !== undefined) {
              yield* Effect.forEach(unused, (channel) => run(connection, `UNLISTEN ${Pg.escapeIdentifier(channel)}`), {
                discard: true
              }).pipe(Effect.ignore)
            }
            yield* Queue.shutdown(subscriber.events)
          }))
      )).pipe(Effect.map((subscriber) => subscriber.events))

    return { subscribe } satisfies Listener
  })

/** Exponential backoff from `reconnectDelay`, capped, with ±20% jitter. */
const backoff = (options: ListenerOptions, failures: number) =>
  Effect.map(Random.nextRange(0.8, 1.2), (jitter) => {
    const base = Duration.toMillis(options.reconnectDelay) * 2 ** Math.min(failures - 1, 20)
    return Duration.millis(Math.round(Math.min(base, Duration.toMillis(options.maxReconnectDelay)) * jitter))
  })

type Verdict = "ours" | "ours, redelivery" | "other-schema" | string

/** Whether a NOTIFY payload is a wake-up of this schema; otherwise why it was ignored. */
const classify = (payload: string | undefined, schema: string): Verdict => {
  let parsed: unknown
  try {
    parsed = JSON.parse(payload ?? "")
  } catch {
    return "the payload is not JSON"
  }
  if (typeof parsed !== "object" || parsed === null || (parsed as { pgwatch?: unknown }).pgwatch !== 1) {
    return "not a pgwatch wake-up"
  }
  const wake = parsed as { schema?: unknown; redelivery?: unknown }
  if (wake.schema !== schema) return "other-schema"
  return wake.redelivery === true ? "ours, redelivery" : "ours"
}

/** Drops a connection without waiting on a peer that may never answer. */
const destroy = (client: Pg.Client) => {
  const stream = (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream
  stream?.destroy?.()
}

/**
 * Ends a connection politely, but gives up after a second (real time, so a frozen peer cannot
 * hold up shutdown even under `TestClock`) and drops the socket.
 */
const close = (client: Pg.Client) =>
  Effect.promise(() =>
    Promise.race([
      client.end().catch(() => undefined),
      new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())
    ])
  ).pipe(Effect.ensuring(Effect.sync(() => {
    client.removeAllListeners("notification")
    client.on("error", () => undefined)
    destroy(client)
  })))
