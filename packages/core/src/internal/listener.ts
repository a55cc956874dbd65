import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as NodeCrypto from "node:crypto"
import * as Pg from "pg"
import { PgWatchError } from "../PgWatchError.js"
import { describeError, escapeUntrusted } from "./logText.js"

/**
 * What a subscriber hears from the listen connection. `Listening` comes once its channels are
 * LISTENed on a (new) connection whose delivery has been proven, with the backend pid the
 * server reports for it: whatever was written before may have been missed, so the subscriber
 * catches up from the log. After `Lost` no wake-ups come until the next `Listening`: the
 * connection broke, or it cannot deliver (a pooler in transaction mode), so subscribers poll.
 */
export type ListenerEvent =
  | { readonly _tag: "Wake"; readonly channel: string; readonly redelivery: boolean }
  | { readonly _tag: "Listening"; readonly pid: number }
  | { readonly _tag: "Lost"; readonly reason: string }

export interface ListenerOptions {
  /** Opens a new connection; a fresh `pg.Client` each call. */
  readonly connect: () => Pg.Client
  /**
   * Sends `NOTIFY channel, payload` on another connection (the query pool): the probe that
   * proves a NOTIFY committed elsewhere reaches the listen connection.
   */
  readonly sendProbe: (channel: string, payload: string) => Effect.Effect<unknown, unknown>
  /** The schema whose wake-ups to accept (payload `{"pgwatch":1,"schema":...}`). */
  readonly schema: string
  readonly healthCheckInterval: Duration.Duration
  readonly healthCheckTimeout: Duration.Duration
  readonly reconnectDelay: Duration.Duration
  readonly maxReconnectDelay: Duration.Duration
  /** How often subscribers poll while no wake-ups come (said in the warning). */
  readonly fallbackPollInterval: Duration.Duration
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
  /** The server process behind the connection, as the server reports it (a pooler fakes the client's). */
  readonly pid: number
  /** This connection's private channel for delivery probes. */
  readonly probeChannel: string
  /** Fails when the connection breaks; the serve loop then reconnects. */
  readonly broken: Deferred.Deferred<never, PgWatchError>
}

/** The connection answers, but a NOTIFY committed elsewhere does not reach it. */
class NotDelivering extends Data.TaggedError("NotDelivering")<{ readonly reason: string }> {}

const listenerError = (message: string, cause?: unknown) =>
  new PgWatchError({ reason: "Listener", message, cause })

const PROBE_PREFIX = "pgwatch_probe_"

/** How often a channel's ignored foreign NOTIFYs may be reported. */
const IGNORED_REPORT_INTERVAL = Duration.minutes(1)

/**
 * One dedicated LISTEN connection shared by every subscriber of a process.
 *
 * Each connection first proves delivery: it LISTENs on a private channel, a NOTIFY is sent
 * there through the query pool, and it must arrive within the health-check time-out. Behind a
 * pooler in transaction mode it never does (the LISTEN stays on whichever server connection
 * ran it): then no channel is LISTENed (pooled server connections are not left listening), one
 * warning names the cause and the fix, subscribers are told `Lost` (they poll at a short
 * interval), and a new connection is tried every `maxReconnectDelay`. A proven connection
 * opts out of the server's idle time-outs and repeats the probe on a timer: a half-open socket
 * gives no error at all, and a changed server pid means a pooler switched its backend. On any
 * failure it reconnects with backoff and tells subscribers, who then catch up from the log.
 * Timers use `Clock`, so tests drive them with `TestClock`.
 */
export const make = (options: ListenerOptions): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    const subscribers = new Set<Subscriber>()
    const current = yield* Ref.make<Connection | undefined>(undefined)
    // LISTEN/UNLISTEN and (re)connection take turns, so a subscriber is never half-registered.
    const lock = yield* Effect.makeSemaphore(1)
    const incoming = yield* Queue.unbounded<Pg.Notification>()
    const firstAttempt = yield* Deferred.make<void>()
    // Probes awaiting their NOTIFY, by payload.
    const probes = new Map<string, Deferred.Deferred<void>>()
    // Whether the last connection could not deliver (warned once until one can again).
    let deaf = false

    const broadcast = (event: ListenerEvent) =>
      Effect.forEach(subscribers, (s) => Queue.offer(s.events, event), { discard: true })

    /** A statement on the listen connection; no answer within the time-out breaks it. */
    const run = (connection: Connection, statement: string, what = `"${statement}"`) =>
      Effect.tryPromise({
        try: () => connection.client.query(statement),
        catch: (cause) => listenerError(`${what} failed on the listen connection`, cause)
      }).pipe(
        Effect.timeoutFail({
          duration: options.healthCheckTimeout,
          onTimeout: () =>
            listenerError(`the listen connection did not answer ${what} in ${Duration.format(options.healthCheckTimeout)}`)
        }),
        Effect.tapError((error) => Deferred.fail(connection.broken, error))
      )

    const listen = (connection: Connection, channels: Iterable<string>) =>
      Effect.forEach(channels, (channel) => run(connection, `LISTEN ${Pg.escapeIdentifier(channel)}`), { discard: true })

    const listenedChannels = () => new Set([...subscribers].flatMap((s) => [...s.channels]))

    const serverPid = (connection: Connection) =>
      Effect.map(
        run(connection, "SELECT pg_backend_pid() AS pid", "a health check"),
        (result) => Number((result.rows[0] as { readonly pid: number }).pid)
      )

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
        const probeChannel = `${PROBE_PREFIX}${NodeCrypto.randomBytes(8).toString("hex")}`
        const opened = { client, pid: 0, probeChannel, broken }
        const pid = yield* serverPid(opened)
        return { ...opened, pid } satisfies Connection
      }),
      ({ client }) => close(client)
    )

    /**
     * Proves the connection delivers: it answers with the same server pid as when it opened,
     * and a NOTIFY sent through the pool on its private channel arrives.
     */
    const probe = (connection: Connection) =>
      Effect.gen(function*() {
        const pid = yield* serverPid(connection)
        if (pid !== connection.pid) {
          return yield* new NotDelivering({
            reason: `the server process behind it changed from pid ${connection.pid} to ${pid} between two statements`
          })
        }
        const token = NodeCrypto.randomBytes(12).toString("hex")
        const arrived = yield* Deferred.make<void>()
        probes.set(token, arrived)
        yield* Effect.gen(function*() {
          yield* options.sendProbe(connection.probeChannel, token).pipe(
            Effect.timeout(options.healthCheckTimeout),
            Effect.mapError((cause) => listenerError("could not send the delivery probe through the pool", cause))
          )
          yield* Deferred.await(arrived).pipe(Effect.timeoutFail({
            duration: options.healthCheckTimeout,
            onTimeout: () =>
              new NotDelivering({
                reason: `a NOTIFY committed through the pool did not arrive within ${Duration.format(options.healthCheckTimeout)}`
              })
          }))
        }).pipe(Effect.ensuring(Effect.sync(() => probes.delete(token))))
      })

    // Only once delivery is proven (a real session): behind a transaction pooler a SET would
    // change whichever server connection ran it, for its other clients.
    const optOutOfTimeouts = (connection: Connection) =>
      run(
        connection,
        `SELECT set_config(name, CASE name WHEN 'statement_timeout' THEN '${
          Duration.toMillis(options.healthCheckTimeout)
        }' ELSE '0' END, false)
           FROM pg_settings
          WHERE name IN ('idle_session_timeout', 'idle_in_transaction_session_timeout', 'statement_timeout')`,
        "turning off idle time-outs"
      )

    // One connection's life: prove delivery, LISTEN everything, report, then re-prove on a
    // timer until it breaks.
    const serve = Effect.scoped(Effect.gen(function*() {
      const connection = yield* open
      const life = Effect.gen(function*() {
        yield* run(connection, `LISTEN ${Pg.escapeIdentifier(connection.probeChannel)}`)
        yield* probe(connection).pipe(
          Effect.tapErrorTag("NotDelivering", () =>
            // Best effort: behind a transaction pooler this may reach another server connection.
            run(connection, `UNLISTEN ${Pg.escapeIdentifier(connection.probeChannel)}`).pipe(Effect.ignore))
        )
        yield* optOutOfTimeouts(connection)
        yield* lock.withPermits(1)(Effect.gen(function*() {
          yield* listen(connection, listenedChannels())
          yield* Ref.set(current, connection)
          yield* broadcast({ _tag: "Listening", pid: connection.pid })
        }))
        yield* Deferred.succeed(firstAttempt, undefined)
        if (deaf) {
          deaf = false
          yield* Effect.logInfo("pgwatch: LISTEN works on the listen connection again; consumers are woken at once")
        }
        return yield* Effect.forever(Effect.delay(probe(connection), options.healthCheckInterval))
      })
      return yield* Effect.raceFirst(life, Deferred.await(connection.broken))
    }))

    // Reconnects forever; the backoff starts over once a connection has been established.
    const supervise = Effect.gen(function*() {
      let failures = 0
      for (;;) {
        const exit = yield* Effect.exit(serve)
        const established = (yield* Ref.getAndSet(current, undefined)) !== undefined
        const error = exit._tag === "Failure" ? Cause.failureOption(exit.cause) : Option.none()
        if (Option.isSome(error) && error.value._tag === "NotDelivering") {
          const reason = `LISTEN receives nothing on the listen connection: ${error.value.reason}`
          yield* broadcast({ _tag: "Lost", reason })
          yield* Deferred.succeed(firstAttempt, undefined)
          if (!deaf) {
            deaf = true
            yield* Effect.logWarning(
              `pgwatch: ${reason}. This is what a pooler in transaction mode does (e.g. PgBouncer pool_mode=transaction, ` +
                `a provider's "pooled" URL): LISTEN cannot work through it. Consumers poll every ` +
                `${Duration.format(options.fallbackPollInterval)} meanwhile. Fix: set listenUrl ` +
                `(PGWATCH_LISTEN_URL, \`pgwatch listen --listen-url\`) to a direct or session-mode connection.`
            )
          }
          failures = 0
          yield* Effect.sleep(options.maxReconnectDelay)
          continue
        }
        const reason = exit._tag === "Failure"
          ? describeError(Option.getOrElse(error, () => Cause.squash(exit.cause)))
          : "closed"
        yield* broadcast({ _tag: "Lost", reason })
        yield* Deferred.succeed(firstAttempt, undefined)
        failures = established ? 1 : failures + 1
        const delay = yield* backoff(options, failures)
        yield* Effect.logWarning(
          `pgwatch: listen connection lost (${reason}); reconnecting in ${Duration.format(delay)}`
        )
        yield* Effect.sleep(delay)
      }
    })

    // Foreign NOTIFYs on a channel: the first is logged, later ones counted and reported at
    // most once per interval, so junk cannot flood the log.
    const ignored = new Map<string, { reportedAt: number; more: number }>()
    const reportIgnored = (channel: string, now: number) =>
      Effect.suspend(() => {
        const entry = ignored.get(channel)
        if (entry === undefined || entry.more === 0) return Effect.void
        const more = entry.more
        ignored.set(channel, { reportedAt: now, more: 0 })
        return Effect.logWarning(
          `pgwatch: ignored ${more} more foreign NOTIFY(s) on channel "${escapeUntrusted(channel)}" in the last ` +
            `${Duration.format(Duration.millis(now - entry.reportedAt))}`
        )
      })
    const ignore = (message: Pg.Notification, why: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const entry = ignored.get(message.channel)
        if (entry !== undefined && now - entry.reportedAt < Duration.toMillis(IGNORED_REPORT_INTERVAL)) {
          entry.more += 1
          return Effect.void
        }
        return Effect.zipRight(
          reportIgnored(message.channel, now),
          Effect.sync(() => ignored.set(message.channel, { reportedAt: now, more: 0 })).pipe(Effect.zipRight(
            Effect.logWarning(
              `pgwatch: ignored a NOTIFY on channel "${escapeUntrusted(message.channel)}" (${why}): ` +
                `payload "${escapeUntrusted(message.payload ?? "")}"; more on this channel are counted and reported ` +
                `at most every ${Duration.format(IGNORED_REPORT_INTERVAL)}`
            )
          ))
        )
      })
    const reportAllIgnored = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.forEach(
        [...ignored].filter(([, entry]) => now - entry.reportedAt >= Duration.toMillis(IGNORED_REPORT_INTERVAL)),
        ([channel]) => reportIgnored(channel, now),
        { discard: true }
      ))

    const route = (message: Pg.Notification) => {
      if (message.channel.startsWith(PROBE_PREFIX)) {
        const arrived = probes.get(message.payload ?? "")
        return arrived === undefined ? Effect.void : Deferred.succeed(arrived, undefined)
      }
      const verdict = classify(message.payload, options.schema)
      if (verdict === "ours" || verdict === "ours, redelivery") {
        const event: ListenerEvent = { _tag: "Wake", channel: message.channel, redelivery: verdict !== "ours" }
        return Effect.forEach(subscribers, (s) =>
          s.channels.has(message.channel) ? Queue.offer(s.events, event) : Effect.void, { discard: true })
      }
      if (verdict === "other-schema") return Effect.void
      return ignore(message, verdict)
    }

    const scope = yield* Effect.scope
    // The connection is the process's: its fibers start from the first subscriber, but log with
    // the annotations of the service's own context, not that consumer's.
    const annotations = yield* FiberRef.get(FiberRef.currentLogAnnotations)
    const startOnce = yield* Effect.once(Effect.gen(function*() {
      yield* Effect.forkIn(Effect.forever(Effect.flatMap(Queue.take(incoming), route)), scope)
      yield* Effect.forkIn(Effect.forever(Effect.delay(reportAllIgnored, IGNORED_REPORT_INTERVAL)), scope)
      yield* Effect.forkIn(supervise, scope)
    }).pipe(
      Effect.locally(FiberRef.currentLogAnnotations, annotations),
      Effect.zipRight(Deferred.await(firstAttempt))
    ))

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
