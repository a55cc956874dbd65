/**
 * `pgwatch demo`: the README's quick start, end to end, in one process. A table with a
 * notifying trigger, a producer writing to it, and two consumers printing what they get; one
 * consumer is stopped while the producer goes on, and started again: it plays back what it
 * missed, flagged as replay. The last write happens after both consumers stop, so the next
 * run begins by replaying it (the embedded database keeps its data in .pgwatch/embedded). It
 * works in a schema of its own (`pgwatch_demo`), never the app's; `--clean` drops it.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Admin from "@pgwatch/core/Admin"
import * as Consumer from "@pgwatch/core/Consumer"
import * as Migrator from "@pgwatch/core/Migrator"
import * as Notification from "@pgwatch/core/Notification"
import * as PgWatch from "@pgwatch/core/PgWatch"
import * as Triggers from "@pgwatch/core/Triggers"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { CliError } from "./CliError.js"
import * as Database from "./Database.js"
import * as EmbeddedTarget from "./internal/embeddedTarget.js"
import * as Output from "./internal/output.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The database, and the demo's own schema (`defaultSchema` unless one was given). */
  readonly target: Database.Target
  /** Use the embedded PostgreSQL even if a database is configured. */
  readonly embedded: boolean
  readonly cwd: string
  /** Drop the demo's schema instead of running the demo. */
  readonly clean?: boolean | undefined
}

/**
 * The schema the demo uses unless told otherwise: its own, never the app's `pgwatch` (nor
 * `PGWATCH_SCHEMA`), so that its consumers never show up in the app's status.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSchema = "pgwatch_demo"

/** The demo's consumers; a schema with others is not the demo's. */
const DEMO_CONSUMERS = ["auditor", "printer"]

const CHANNEL = "demo_orders"
const WAIT = Duration.seconds(15)

/** The embedded server for the demo's scope; its data stays in .pgwatch/embedded. */
const embeddedTarget = (options: Options) =>
  EmbeddedTarget.embeddedTarget({
    cwd: options.cwd,
    schema: Option.some(options.target.schema),
    config: Option.none(),
    say: Output.out
  })

const describe = (n: Notification.Notification): string =>
  Option.match(Notification.dataChange(n), {
    onNone: () => Output.inline(n.payload),
    onSome: (change) => {
      const row = Option.getOrElse(Option.orElse(change.newData, () => change.oldData), () => ({}))
      return `${change.action.padEnd(6)} ${change.table} #${String(change.id)} ${Output.inline(row)}`
    }
  })

/** A consumer that prints what it gets and reports it on a queue the demo waits on. */
const printer = (id: string, seen: Queue.Queue<bigint>) =>
  Consumer.make({
    id,
    channels: [CHANNEL],
    handle: (n) =>
      Output.out(`  [${id.padEnd(7)}] ${n.isReplay ? "replay" : "live  "} log #${n.id}  ${describe(n)}`).pipe(
        Effect.zipRight(Queue.offer(seen, n.id))
      )
  })

const expect = (seen: Queue.Queue<bigint>, who: string, count: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* Queue.take(seen)
  }).pipe(
    Effect.timeoutFail({
      duration: WAIT,
      onTimeout: () =>
        new CliError({ reason: "Embedded", message: `demo: ${who} did not receive ${count} notification(s) in ${Duration.format(WAIT)}` })
    })
  )

/** Runs a consumer until the returned effect is run. */
const start = (consumer: Consumer.Consumer) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(Consumer.layer(consumer), scope)
    return Scope.close(scope, Exit.void)
  })

/**
 * Waits until a consumer has caught up and registered as waiting for wake-ups, so that what
 * the producer writes next reaches it live rather than by its first read of the log.
 */
const caughtUp = (id: string) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch.PgWatch
    const rows = yield* sql<{ n: number }>`
      SELECT count(*)::int AS n FROM ${sql(settings.schema)}.waiting WHERE consumer_id = ${id}`
    return rows[0]!.n > 0
  }).pipe(
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (ready) => ready }),
    Effect.timeout(WAIT),
    Effect.ignore
  )

const pendingFor = (id: string) =>
  Effect.map(Admin.status({ consumerIds: [id] }), (rows) => rows[0]?.pending ?? 0)

const script = Effect.gen(function*() {
  const { settings } = yield* PgWatch.PgWatch
  const sql = yield* SqlClient.SqlClient
  const schema = settings.schema
  const table = sql(schema)
  yield* sql`CREATE TABLE IF NOT EXISTS ${table}.demo_orders (
    id serial PRIMARY KEY, item text NOT NULL, quantity integer NOT NULL, status text NOT NULL DEFAULT 'new')`
  const trigger = yield* Triggers.add(`${schema}.demo_orders`, { channel: CHANNEL })
  yield* Output.out(`Table ${trigger.table} notifies channel "${trigger.channel}" (trigger ${trigger.trigger}).`)

  // Each write is its own transaction, announced before it commits (consumers see it after).
  const insert = (item: string, quantity: number) =>
    sql.withTransaction(Effect.flatMap(
      sql<{ id: number }>`INSERT INTO ${table}.demo_orders (item, quantity) VALUES (${item}, ${quantity}) RETURNING id`,
      ([row]) => Output.out(`  [producer] INSERT order #${row!.id}: ${quantity} x ${item}`).pipe(Effect.as(row!.id))
    ))
  const update = (id: number, status: string) =>
    sql.withTransaction(
      sql`UPDATE ${table}.demo_orders SET status = ${status} WHERE id = ${id}`.pipe(
        Effect.zipRight(Output.out(`  [producer] UPDATE order #${id}: status ${status}`))
      )
    )

  const printerSeen = yield* Queue.unbounded<bigint>()
  const auditorSeen = yield* Queue.unbounded<bigint>()

  // A previous run left notifications the consumers have not seen (the last write of step 4).
  const missed = [yield* pendingFor("printer"), yield* pendingFor("auditor")] as const
  yield* Output.out("")
  yield* Output.out("1. Two consumers start and follow the channel live.")
  if (missed[0] + missed[1] > 0) {
    yield* Output.out(`   First they play back what was written while they were not running (a previous run):`)
  }
  const stopPrinter = yield* start(printer("printer", printerSeen))
  let stopAuditor = yield* start(printer("auditor", auditorSeen))
  yield* expect(printerSeen, "printer", missed[0])
  yield* expect(auditorSeen, "auditor", missed[1])
  yield* caughtUp("printer")
  yield* caughtUp("auditor")

  const a = yield* insert("coffee", 2)
  yield* expect(printerSeen, "printer", 1)
  yield* expect(auditorSeen, "auditor", 1)
  const b = yield* insert("tea", 1)
  yield* expect(printerSeen, "printer", 1)
  yield* expect(auditorSeen, "auditor", 1)

  yield* Output.out("")
  yield* Output.out("2. The auditor stops (its progress is saved); the producer goes on.")
  yield* stopAuditor
  yield* update(a, "paid")
  yield* expect(printerSeen, "printer", 1)
  const c = yield* insert("cake", 3)
  yield* expect(printerSeen, "printer", 1)
  yield* update(b, "shipped")
  yield* expect(printerSeen, "printer", 1)

  yield* Output.out("")
  yield* Output.out("3. The auditor starts again: it plays back the 3 it missed (replay), then follows live.")
  stopAuditor = yield* start(printer("auditor", auditorSeen))
  yield* expect(auditorSeen, "auditor", 3)
  yield* caughtUp("auditor")
  yield* update(c, "paid")
  yield* expect(printerSeen, "printer", 1)
  yield* expect(auditorSeen, "auditor", 1)

  yield* Output.out("")
  yield* Output.out("4. Both consumers stop. One more order is written while nobody listens:")
  yield* stopAuditor
  yield* stopPrinter
  yield* insert("scone", 1)
  yield* Output.out("   run the demo again and both consumers start by replaying it.")
})

/**
 * Runs the demo on the configured database, or on the embedded PostgreSQL when none is
 * configured (or `embedded` is set).
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options) =>
  Effect.scoped(Effect.gen(function*() {
    const startedAt = Date.now()
    const target = options.embedded || !options.target.configured
      ? yield* embeddedTarget(options)
      : options.target
    yield* notSomeoneElses(target).pipe(Effect.provide(Database.sqlLayer(target)))
    if (options.clean === true) {
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(target.schema)} CASCADE`).pipe(
        Effect.provide(Database.sqlLayer(target))
      )
      return yield* Output.out(`Dropped the demo's schema "${target.schema}" (${target.label}).`)
    }
    yield* Output.out(`Database ${target.label}, pgwatch schema "${target.schema}" (the demo's own).`)
    const applied = yield* Migrator.migrate({ schema: target.schema }).pipe(Effect.provide(Database.sqlLayer(target)))
    yield* Output.out(
      applied.length === 0
        ? "Schema up to date (migrated by an earlier run)."
        : `Migrated: ${applied.map((m) => `${String(m.version).padStart(4, "0")}_${m.name}`).join(", ")}.`
    )
    yield* script.pipe(
      Effect.provide(Database.watchLayer(target, { pollInterval: "1 second", shutdownTimeout: "5 seconds" }))
    )
    yield* Output.out("")
    yield* Output.out(`Demo finished in ${((Date.now() - startedAt) / 1000).toFixed(1)}s.`)
    yield* Output.out(
      `Its table, log and consumers stay in schema "${target.schema}" for the next run; ` +
        `remove them with: npx pgwatch demo --clean${target.schema === defaultSchema ? "" : ` --schema ${target.schema}`}`
    )
  }))

/**
 * Fails unless the schema is absent or the demo's: it holds no consumer but the demo's, so
 * neither running the demo nor `--clean` touches an app's pgwatch schema.
 */
const notSomeoneElses = (target: Database.Target) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [{ exists }] = yield* sql<{ exists: boolean }>`
      SELECT to_regclass(${`"${target.schema}".consumer`}) IS NOT NULL AS exists`
    if (!exists) return
    const rows = yield* sql<{ id: string }>`SELECT id FROM ${sql(target.schema)}.consumer ORDER BY id`
    const others = rows.map((row) => row.id).filter((id) => !DEMO_CONSUMERS.includes(id))
    if (others.length > 0) {
      return yield* new CliError({
        reason: "InvalidInput",
        message: `schema "${target.schema}" holds consumers that are not the demo's (${others.join(", ")}): ` +
          `the demo runs in a schema of its own; leave out --schema (default ${defaultSchema}) or pick another`
      })
    }
  })
