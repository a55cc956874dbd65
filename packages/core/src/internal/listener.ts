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
import * as Json from "../Json.js"
import * as Inbox from "./inbox.js"
import * as LiveRow from "./liveRow.js"
import { describeError, escapeUntrusted } from "./logText.js"
import { sqlState } from "./sqlState.js"
import { deepFreeze } from "./deepFreeze.js"

/**
 * What a subscriber hears from the listen connection. `Listening` comes once its channels are
 * LISTENed on a (new) connection whose delivery has been proven, with the backend pid the
 * server reports for it: whatever was written before may have been missed, so the subscriber
 * catches up from the log. After `Lost` nothing comes until the next `Listening`: the
 * connection broke, or it cannot deliver (a pooler in transaction mode), so subscribers poll.
 *
 * - `Wake`: rows were written on `channel` (a JSON wake-up, sent by redrive and replay, or a
 *   live row while the key is unknown): read the log.
 * - `Row`: a live row whose signature verified; its payload, parsed once and deep-frozen (it is
 *   shared by every subscriber of the channel), or none when it was left out (read it by id).
 * - `ReadXid`: transaction `xid` wrote more rows on `channel` than were sent one by one.
 * - `Overflow`: this subscriber left too many rows pending; some `Row` / `ReadXid` after the
 *   events before this one were dropped (read the log).
 * `Listening`, `Lost`, `Wake` and `Overflow` are never dropped (see `inbox.ts`).
 */
export type ListenerEvent =
  | { readonly _tag: "Wake"; readonly channel: string; readonly redelivery: boolean }
  | { readonly _tag: "Listening"; readonly pid: number }
  | { readonly _tag: "Lost"; readonly reason: string }
  | {
    readonly _tag: "Row"
    readonly channel: string
    readonly id: bigint
    readonly xid: string
    readonly createdAt: Date
    readonly payload: Option.Option<unknown>
    /** How many subscribers of this process the row went to: the work it costs the process. */
    readonly fanOut: number
  }
  | { readonly _tag: "ReadXid"; readonly channel: string; readonly xid: string }
  | { readonly _tag: "Overflow" }

/** A subscriber's events, in the order they came. */
export interface Subscription {
  /** Waits for the next event and takes it. */
  readonly take: Effect.Effect<ListenerEvent>
  /** Takes every pending event (maybe none) without waiting. */
  readonly takeAll: Effect.Effect<ReadonlyArray<ListenerEvent>>
  /** Waits until an event is pending, taking nothing: safe to interrupt (e.g. by a timer). */
  readonly waitPending: Effect.Effect<void>
  /** Adds a wake-up of the subscriber's own (the process poll's findings), in order with the rest. */
  readonly offer: (event: Extract<ListenerEvent, { readonly _tag: "Wake" }>) => void
}

export interface ListenerOptions {
  /** Opens a new connection; a fresh `pg.Client` each call. */
  readonly connect: () => Pg.Client
  /**
   * Sends `NOTIFY channel, payload` on another connection (the query pool): the probe that
   * proves a NOTIFY committed elsewhere reaches the listen connection.
   */
  readonly sendProbe: (channel: string, payload: string) => Effect.Effect<unknown, unknown>
  /**
   * Reads the installation's live-row key (`<schema>.live_key()`) through the pool. It fails
   * without the grant or on a schema from before live rows: live rows then come as `Wake`.
   */
  readonly fetchKey: Effect.Effect<Uint8Array, unknown>
  /** The schema whose wake-ups to accept (payload `{"pgwatch":1,"schema":...}`). */
  readonly schema: string
  readonly healthCheckInterval: Duration.Duration
  readonly healthCheckTimeout: Duration.Duration
  readonly reconnectDelay: Duration.Duration
  readonly maxReconnectDelay: Duration.Duration
  /** How often subscribers poll while no wake-ups come (said in the warning). */
  readonly fallbackPollInterval: Duration.Duration
  /** Rows (`Row`, `ReadXid`) a subscriber may leave pending before they are dropped; 1000 by default. */
  readonly maxPendingRows?: number | undefined
}

export interface Listener {
  /**
   * Listens on the channels for as long as the scope is open. The first subscription opens
   * the connection (so one-shot uses of the service never do) and returns once that first
   * attempt has succeeded or failed. Subscriptions that arrive together are LISTENed in one
   * round trip.
   */
  readonly subscribe: (channels: ReadonlyArray<string>) => Effect.Effect<Subscription, never, Scope.Scope>
}

interface Subscriber {
  readonly channels: ReadonlySet<string>
  readonly inbox: Inbox.Inbox
}

/** A subscription or unsubscription waiting for its turn to change what is LISTENed. */
interface Change {
  readonly subscriber: Subscriber
  readonly joins: boolean
}

interface Connection {
  readonly client: Pg.Client
  /** The server process behind the connection, as the server reports it (a pooler fakes the client's). */
  readonly pid: number
  /** This connection's private channel for delivery probes. */
  readonly probeChannel: string
  /** Fails when the connection breaks; the serve loop then reconnects. */
  readonly broken: Deferred.Deferred<never, PgWatchError>
  /** The channels LISTENed on it. */
  readonly listened: Set<string>
}

/** The connection answers, but a NOTIFY committed elsewhere does not reach it. */
class NotDelivering extends Data.TaggedError("NotDelivering")<{ readonly reason: string }> {}

const listenerError = (message: string, cause?: unknown) =>
  new PgWatchError({ reason: "Listener", message, cause })

const PROBE_PREFIX = "pgwatch_probe_"

/** How often a channel's ignored foreign NOTIFYs may be reported. */
const IGNORED_REPORT_INTERVAL = Duration.minutes(1)

/** LISTEN / UNLISTEN statements sent in one round trip at most. */
const STATEMENTS_PER_QUERY = 1000

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
    const byChannel = new Map<string, Set<Subscriber>>()
    const current = yield* Ref.make<Connection | undefined>(undefined)
    // Changes to what is LISTENed and (re)connection take turns, so a subscriber is never
    // half-registered.
    const lock = yield* Effect.makeSemaphore(1)
    // Subscriptions and unsubscriptions not applied yet: whoever holds the lock next applies
    // them all in one round trip.
    const changes: Array<Change> = []
    const incoming = yield* Queue.unbounded<Pg.Notification>()
    const firstAttempt = yield* Deferred.make<void>()
    // Probes awaiting their NOTIFY, by payload.
    const probes = new Map<string, Deferred.Deferred<void>>()
    // Whether the last connection could not deliver (warned once until one can again).
    let deaf = false
    // The live-row key, once read; none while it cannot be (live rows then come as wake-ups).
    let key: Option.Option<Uint8Array> = Option.none()
    let keyMissingSaid = false
    let badBodySaid = false
    const maxPendingRows = options.maxPendingRows ?? 1000

    const broadcast = (event: ListenerEvent) =>
      Effect.sync(() => {
        for (const subscriber of subscribers) subscriber.inbox.offer(event)
      })

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

    /** LISTENs and UNLISTENs as one simple query per STATEMENTS_PER_QUERY (one round trip). */
    const alter = (connection: Connection, listen: ReadonlyArray<string>, unlisten: ReadonlyArray<string>) => {
      const statements = [
        ...unlisten.map((channel) => `UNLISTEN ${Pg.escapeIdentifier(channel)}`),
        ...listen.map((channel) => `LISTEN ${Pg.escapeIdentifier(channel)}`)
      ]
      const queries = Array.from(
        { length: Math.ceil(statements.length / STATEMENTS_PER_QUERY) },
        (_, i) => statements.slice(i * STATEMENTS_PER_QUERY, (i + 1) * STATEMENTS_PER_QUERY)
      )
      return Effect.forEach(
        queries,
        (batch) =>
          run(connection, batch.join("; "), batch.length === 1 ? `"${batch[0]}"` : `LISTEN/UNLISTEN of ${batch.length} channels`),
        { discard: true }
      ).pipe(Effect.zipRight(Effect.sync(() => {
        for (const channel of unlisten) connection.listened.delete(channel)
        for (const channel of listen) connection.listened.add(channel)
      })))
    }

    /**
     * Applies every pending (un)subscription (the lock is held): one round trip LISTENs the
     * channels they add and UNLISTENs those nobody wants any more. Without a connection, the
     * next one LISTENs every channel.
     */
    const applyChanges = Effect.gen(function*() {
      const batch = changes.splice(0)
      if (batch.length === 0) return
      const touched = new Set<string>()
      for (const { joins, subscriber } of batch) {
        if (joins) subscribers.add(subscriber)
        else subscribers.delete(subscriber)
        for (const channel of subscriber.channels) {
          touched.add(channel)
          const listeners = byChannel.get(channel) ?? new Set<Subscriber>()
          if (joins) listeners.add(subscriber)
          else listeners.delete(subscriber)
          if (listeners.size === 0) byChannel.delete(channel)
          else byChannel.set(channel, listeners)
        }
      }
      const connection = yield* Ref.get(current)
      if (connection === undefined) return
      const listening: ListenerEvent = { _tag: "Listening", pid: connection.pid }
      yield* alter(
        connection,
        [...touched].filter((channel) => byChannel.has(channel) && !connection.listened.has(channel)),
        [...touched].filter((channel) => !byChannel.has(channel) && connection.listened.has(channel))
      ).pipe(
        Effect.zipRight(Effect.sync(() => {
          for (const { joins, subscriber } of batch) if (joins) subscriber.inbox.offer(listening)
        })),
        // A failed statement breaks the connection; the reconnect then LISTENs and reports.
        Effect.ignore
      )
    })


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
        const opened = { client, pid: 0, probeChannel, broken, listened: new Set<string>() }
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

    // The live-row key, read through the pool for each connection and, while it cannot be
    // read, again at each health check (so a grant or a migration takes effect without a
    // restart). A key once read is kept through a failed re-read: it belongs to the installation.
    const readKey = Effect.gen(function*() {
      const read = yield* Effect.exit(Effect.timeout(options.fetchKey, options.healthCheckTimeout))
      if (read._tag === "Success") {
        key = Option.some(read.value)
        if (keyMissingSaid) {
          keyMissingSaid = false
          yield* Effect.logInfo("pgwatch: the live-row key can be read now; live rows are delivered from their NOTIFY")
        }
      } else if (Option.isNone(key) && !keyMissingSaid) {
        keyMissingSaid = true
        yield* Effect.logInfo(keyMissing(options.schema, Cause.squash(read.cause)))
      }
    })

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
        yield* readKey
        yield* lock.withPermits(1)(Effect.gen(function*() {
          yield* alter(connection, [...byChannel.keys()], [])
          yield* Ref.set(current, connection)
          yield* broadcast({ _tag: "Listening", pid: connection.pid })
        }))
        yield* Deferred.succeed(firstAttempt, undefined)
        if (deaf) {
          deaf = false
          yield* Effect.logInfo("pgwatch: LISTEN works on the listen connection again; consumers are woken at once")
        }
        const check = Effect.zipRight(probe(connection), Effect.suspend(() => Option.isNone(key) ? readKey : Effect.void))
        return yield* Effect.forever(Effect.delay(check, options.healthCheckInterval))
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
    const ignored = new Map<string, { reportedAt: number; more: number; forged: number }>()
    const reportIgnored = (channel: string, now: number) =>
      Effect.suspend(() => {
        const entry = ignored.get(channel)
        if (entry === undefined || entry.more === 0) return Effect.void
        const { forged, more } = entry
        ignored.set(channel, { reportedAt: now, more: 0, forged: 0 })
        return Effect.logWarning(
          `pgwatch: ignored ${more} more foreign NOTIFY(s) on channel "${escapeUntrusted(channel)}" in the last ` +
            `${Duration.format(Duration.millis(now - entry.reportedAt))}` +
            (forged > 0 ? ` (${forged} of them live rows failing signature verification)` : "")
        )
      })
    const ignore = (message: Pg.Notification, why: string, forged = false) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const entry = ignored.get(message.channel)
        if (entry !== undefined && now - entry.reportedAt < Duration.toMillis(IGNORED_REPORT_INTERVAL)) {
          entry.more += 1
          if (forged) entry.forged += 1
          return Effect.void
        }
        return Effect.zipRight(
          reportIgnored(message.channel, now),
          Effect.sync(() => ignored.set(message.channel, { reportedAt: now, more: 0, forged: 0 })).pipe(Effect.zipRight(
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

    /** Hands one event object to every subscriber of the channel. */
    const deliver = (channel: string, event: ListenerEvent) => {
      const listeners = byChannel.get(channel)
      if (listeners !== undefined) for (const subscriber of listeners) subscriber.inbox.offer(event)
    }

    // A live row is verified and parsed once, whatever the number of its subscribers.
    const routeLive = (message: Pg.Notification, payload: string): Effect.Effect<void> => {
      const channel = message.channel
      if (!byChannel.has(channel)) return Effect.void
      if (Option.isNone(key)) {
        // Unverifiable: at most a wake-up, which costs the reader one read of the log.
        if (liveSchema(payload) === options.schema) deliver(channel, { _tag: "Wake", channel, redelivery: false })
        return Effect.void
      }
      const decoded = LiveRow.decode(channel, payload, options.schema, key.value)
      switch (decoded._tag) {
        case "OtherSchema":
          return Effect.void
        case "Invalid":
          return ignore(message, `signature failure: ${decoded.reason}`, true)
        case "ReadXid":
          deliver(channel, { _tag: "ReadXid", channel, xid: decoded.xid })
          return Effect.void
        case "Row": {
          let body: Option.Option<unknown> = Option.none()
          if (decoded.body !== undefined) {
            try {
              body = Option.some(deepFreeze(Json.parse(decoded.body)))
            } catch (error) {
              // Signed, so ours, yet not JSON: the reader reads the row from the log instead.
              deliver(channel, { _tag: "Wake", channel, redelivery: false })
              if (badBodySaid) return Effect.void
              badBodySaid = true
              return Effect.logWarning(
                `pgwatch: the live row ${decoded.id} on channel "${escapeUntrusted(channel)}" carried a payload that ` +
                  `does not parse (${describeError(error)}); it is read from the log instead (said once)`
              )
            }
          }
          deliver(channel, {
            _tag: "Row",
            channel,
            id: decoded.id,
            xid: decoded.xid,
            createdAt: decoded.createdAt,
            payload: body,
            fanOut: byChannel.get(channel)?.size ?? 1
          })
          return Effect.void
        }
      }
    }

    const route = (message: Pg.Notification) => {
      if (message.channel.startsWith(PROBE_PREFIX)) {
        const arrived = probes.get(message.payload ?? "")
        return arrived === undefined ? Effect.void : Deferred.succeed(arrived, undefined)
      }
      const payload = message.payload ?? ""
      if (LiveRow.isLive(payload)) return routeLive(message, payload)
      const verdict = classify(payload, options.schema)
      if (verdict === "ours" || verdict === "ours, redelivery") {
        deliver(message.channel, { _tag: "Wake", channel: message.channel, redelivery: verdict !== "ours" })
        return Effect.void
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
      Effect.zipRight(
        startOnce,
        Effect.acquireRelease(
          Effect.suspend(() => {
            const subscriber: Subscriber = { channels: new Set(channels), inbox: Inbox.make(maxPendingRows) }
            changes.push({ subscriber, joins: true })
            return Effect.as(lock.withPermits(1)(applyChanges), subscriber)
          }),
          // Applied without waiting: consumers that stop together are UNLISTENed in one round trip.
          (subscriber) =>
            Effect.zipRight(
              Effect.sync(() => changes.push({ subscriber, joins: false })),
              Effect.forkIn(lock.withPermits(1)(applyChanges), scope)
            )
        )
      ).pipe(Effect.map(({ inbox }): Subscription => inbox))

    return { subscribe } satisfies Listener
  })

/** Exponential backoff from `reconnectDelay`, capped, with ±20% jitter. */
const backoff = (options: ListenerOptions, failures: number) =>
  Effect.map(Random.nextRange(0.8, 1.2), (jitter) => {
    const base = Duration.toMillis(options.reconnectDelay) * 2 ** Math.min(failures - 1, 20)
    return Duration.millis(Math.round(Math.min(base, Duration.toMillis(options.maxReconnectDelay)) * jitter))
  })

/** The schema a live-row payload names (read without verifying it). */
const liveSchema = (payload: string) => {
  const end = payload.indexOf(":", LiveRow.PREFIX.length)
  return end < 0 ? undefined : payload.slice(LiveRow.PREFIX.length, end)
}

/** The one info line saying why live rows come as wake-ups, and the fix. */
const keyMissing = (schema: string, error: unknown) => {
  const fix = sqlState(error) === "42883"
    ? `schema "${schema}" predates live rows: migrate it (\`pgwatch migrate\`)`
    : sqlState(error) === "42501"
    ? `this role may not read the key: \`pgwatch grant <role> --as consumer\``
    : "it is tried again at each health check"
  return `pgwatch: live rows arrive as wake-ups (each read from the log) because the live-row key cannot be read ` +
    `(${describeError(error)}). Fix: ${fix}`
}

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
