/**
 * `pgwatch listen`: every selected consumer in one process, each its own supervised fiber
 * (`Consumer.layer`), until a signal. Closing the scope stops them the library's way: no new
 * work, in-flight handlers finish (or are abandoned after the shutdown time-out), progress
 * is saved.
 *
 * @since 0.1.0
 */
import * as Admin from "@pgwatch/core/Admin"
import * as Consumer from "@pgwatch/core/Consumer"
import type * as PgWatch from "@pgwatch/core/PgWatch"
import type { PgWatchError } from "@pgwatch/core/PgWatchError"
import * as Arr from "effect/Array"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Database from "./Database.js"
import type { Discovered } from "./Discovery.js"
import * as Output from "./internal/output.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly target: Database.Target
  readonly selected: Arr.NonEmptyReadonlyArray<Discovered>
  /** Services the handlers need (the config file's `layer`). */
  readonly layer: Option.Option<Layer.Layer<any, any, never>>
  readonly pollInterval: Option.Option<Duration.Duration>
  readonly pageSize: Option.Option<number>
  readonly reconnectDelay: Option.Option<Duration.Duration>
  readonly shutdownTimeout: Duration.Duration
  readonly skipPlayback: boolean
  /** Progress as a redrawn line (a terminal) or as log lines. */
  readonly progress: "tty" | "lines"
}

/**
 * Runs the consumers until interrupted.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options) => {
  const watchOptions: PgWatch.Options = {
    shutdownTimeout: options.shutdownTimeout,
    ...Option.match(options.pollInterval, { onNone: () => ({}), onSome: (pollInterval) => ({ pollInterval }) }),
    ...Option.match(options.pageSize, { onNone: () => ({}), onSome: (pageSize) => ({ pageSize }) }),
    ...Option.match(options.reconnectDelay, { onNone: () => ({}), onSome: (reconnectDelay) => ({ reconnectDelay }) })
  }
  const runOptions: Consumer.RunOptions = {
    skipPlayback: options.skipPlayback,
    pageSize: Option.getOrUndefined(options.pageSize)
  }
  const ids = options.selected.map((d) => d.id)

  return Effect.scoped(Effect.gen(function*() {
    const fatal = yield* Deferred.make<void, PgWatchError>()
    const [first, ...rest] = Arr.map(options.selected, (d) => Consumer.layer(d.consumer, { ...runOptions, fatal }))
    const consumers = Layer.mergeAll(first, ...rest)
    // What handlers need is only known at run time (the config file's layer provides it; a
    // missing service stops its consumer and fails `fatal`), so the requirement is stated here.
    const provided = Option.match(options.layer, {
      onNone: () => consumers,
      onSome: (services) => consumers.pipe(Layer.provide(services))
    }) as Layer.Layer<never, unknown, PgWatch.PgWatch>
    const context = yield* Layer.build(Database.watchLayer(options.target, watchOptions))
    yield* Layer.build(provided).pipe(Effect.provide(context))
    yield* Output.err(
      `pgwatch: listening with ${ids.length} consumer${ids.length === 1 ? "" : "s"} ` +
        `(database ${options.target.label}, schema ${options.target.schema}${options.skipPlayback ? ", playback skipped" : ""}); ` +
        `Ctrl-C or SIGTERM stops`
    )
    for (const d of options.selected) {
      yield* Output.err(`  ${d.id} (app ${d.app}) on ${d.channels.join(", ")}`)
    }
    yield* Effect.forkScoped(progress(ids, options.progress).pipe(Effect.provide(context), Effect.ignoreLogged))
    // Runs until a signal, or until a consumer stops for good (a service its handler needs is
    // missing): then the command fails with that error, and the others stop gracefully.
    return yield* Deferred.await(fatal)
  })).pipe(
    Effect.onInterrupt(() => Output.err("pgwatch: stopped; progress saved"))
  )
}

interface Track {
  initial: number | undefined
  pending: number
  caughtUp: boolean
}

const TICK = Duration.seconds(1)

/** The line's room on the terminal (some report 0 columns: then do not cut). */
const width = () => {
  const columns = process.stderr.columns ?? 0
  return columns > 20 ? columns - 1 : 500
}
const LINE_EVERY_TICKS = 5

const describe = (id: string, track: Track, elapsedSeconds: number) => {
  const total = track.initial ?? 0
  const done = Math.max(0, total - track.pending)
  const rate = elapsedSeconds > 0 ? done / elapsedSeconds : 0
  const eta = rate > 0 ? Output.age(track.pending / rate) : "?"
  return `${id} ${done.toLocaleString("en")}/${total.toLocaleString("en")} (${Math.round(rate).toLocaleString("en")}/s, ` +
    `${track.pending.toLocaleString("en")} left, ~${eta})`
}

/**
 * Playback progress: each second, how many of each consumer's backlog remain (from the
 * database, `Admin.status`), the rate so far and the time left; until all have caught up.
 */
const progress = (ids: ReadonlyArray<string>, mode: "tty" | "lines") =>
  Effect.gen(function*() {
    const tracks = new Map<string, Track>(ids.map((id) => [id, { initial: undefined, pending: 0, caughtUp: false }]))
    const startedAt = Date.now()
    let ticks = 0
    let drawn = false
    const clear = Effect.sync(() => {
      if (drawn) process.stderr.write("\r\x1b[2K")
      drawn = false
    })
    const tick = Effect.gen(function*() {
      ticks += 1
      const elapsed = (Date.now() - startedAt) / 1000
      const rows = yield* Admin.status({ consumerIds: ids })
      for (const row of rows) {
        const track = tracks.get(row.id)!
        if (track.caughtUp) continue
        track.pending = row.pending
        if (track.initial === undefined) {
          track.initial = row.pending
          if (row.pending > 0) {
            yield* clear
            yield* Output.err(`pgwatch: ${row.id} is playing back ${row.pending.toLocaleString("en")} notifications`)
          }
        }
        if (row.pending === 0) {
          track.caughtUp = true
          if ((track.initial ?? 0) > 0) {
            yield* clear
            yield* Output.err(
              `pgwatch: ${row.id} caught up: played back ${track.initial!.toLocaleString("en")} in ${Output.age(elapsed)}`
            )
          }
        }
      }
      const playing = [...tracks].filter(([, t]) => !t.caughtUp && t.initial !== undefined && t.initial > 0)
      if (playing.length > 0) {
        const text = `playback: ${playing.map(([id, t]) => describe(id, t, elapsed)).join(" · ")}`
        if (mode === "tty") {
          yield* Effect.sync(() => process.stderr.write(`\r\x1b[2K${text.slice(0, width())}`))
          drawn = true
        } else if (ticks % LINE_EVERY_TICKS === 0) {
          yield* Output.err(`pgwatch: ${text}`)
        }
      }
      return [...tracks.values()].every((t) => t.caughtUp)
    })
    yield* tick.pipe(
      Effect.repeat({ schedule: Schedule.spaced(TICK), until: (allCaughtUp) => allCaughtUp }),
      Effect.ensuring(clear)
    )
  })
