/**
 * What looking at the log costs N idle consumers (each on its own channel), side by side:
 * - per consumer, as readers poll without the process poller: one page read (`read_batch_page`)
 *   and one redelivery query each, every poll interval;
 * - one process poll (internal/poller.ts): one statement for all N.
 * Both on a log holding `background` rows on other channels. Prints statements and server time
 * per interval, and checks that the process poll wakes only the consumer that has a row.
 *
 *   npx tsx --conditions=source scratchpad/poller.ts [background=200000]
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { PgWatch } from "@pgwatch/core"
import { Console, Deferred, Duration, Effect, Fiber, Layer, Option } from "effect"
import * as Poller from "../packages/core/src/internal/poller.js"
import { DatabaseLive } from "./database.js"

const background = Number(process.argv[2] ?? 200_000)
const schema = `poller_${process.pid}`
const ROUNDS = 5

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([duration, a]) => [Duration.toMillis(duration), a] as const)

const program = Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  const { listener } = yield* PgWatch.PgWatch
  const q = sql(schema)
  yield* sql`INSERT INTO ${q}.notification_log (channel, payload)
             SELECT 'other_' || (i % 1000), jsonb_build_object('i', i) FROM generate_series(1, ${background}) AS i`
  yield* sql`ANALYZE ${q}.notification_log`
  yield* Console.log(`log: ${background} rows on 1000 other channels\n`)
  yield* Console.log("N    | per consumer: statements, ms per interval | process poll: statements, ms per interval | woken right")
  for (const n of [1, 10, 100, 500]) {
    const ids = Array.from({ length: n }, (_, i) => `idle${n}_${i}`)
    const [{ done }] = yield* sql<{ done: string }>`SELECT pg_current_snapshot()::text AS done`
    // Today: each consumer reads its next page and its redeliveries.
    const perConsumer = yield* Effect.forEach(Array.from({ length: ROUNDS }), () =>
      Effect.map(
        timed(Effect.forEach(ids, (id) =>
          Effect.zipRight(
            sql`SELECT * FROM ${q}.read_batch_page(${[id]}::text[], ${done}::pg_snapshot, NULL, '0'::xid8, 0, 1000, 16777216)`,
            sql`SELECT l.id FROM ${q}.redelivery r JOIN ${q}.notification_log l ON l.id = r.log_id
                 WHERE r.consumer_id = ${id} ORDER BY r.log_id LIMIT 1000`
          ), { discard: true })),
        ([ms]) => ms
      ))
    // The process poll: one statement for all, timed as it runs.
    const pollMs: Array<number> = []
    const polled = yield* Deferred.make<void>()
    const poller = yield* Poller.make({
      sql: {
        unsafe: <A extends object>(statement: string, params: ReadonlyArray<string>) =>
          Effect.tap(timed(sql.unsafe<A>(statement, params)), ([ms]) =>
            Effect.sync(() => pollMs.push(ms)).pipe(
              Effect.zipRight(pollMs.length === ROUNDS ? Deferred.succeed(polled, undefined) : Effect.void)
            )).pipe(Effect.map(([, rows]) => rows))
      },
      schema,
      pollInterval: Duration.millis(200),
      fallbackPollInterval: Duration.millis(200),
      listener
    })
    const handles = yield* Effect.forEach(ids, (id) => poller.watch(id, [id]))
    for (const handle of handles) handle.publish(done, [], "0")
    yield* Deferred.await(polled)
    // One row for the last consumer: the next poll wakes it and no other.
    yield* sql`INSERT INTO ${q}.notification_log (channel, payload) VALUES (${ids.at(-1)!}, '{}')`
    const dues = yield* Effect.forEach(handles, (handle) => Effect.fork(handle.due))
    yield* Fiber.join(dues.at(-1)!)
    const others = yield* Effect.forEach(dues.slice(0, -1), Fiber.poll)
    const right = others.every(Option.isNone)
    yield* Effect.forEach(dues, Fiber.interrupt)
    yield* Console.log(
      `${String(n).padEnd(4)} | ${String(2 * n).padStart(5)} statements, ${median(perConsumer).toFixed(1).padStart(7)} ms` +
        `                | 1 statement, ${median(pollMs).toFixed(1).padStart(6)} ms                     | ${right}`
    )
  }
}).pipe(Effect.scoped)

const WatchLive = PgWatch.layer({ schema, migrate: true }).pipe(Layer.provideMerge(DatabaseLive))
const dropSchema = Layer.scopedDiscard(Effect.flatMap(PgClient.PgClient, (sql) =>
  Effect.addFinalizer(() => Effect.ignore(sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`)))).pipe(
    Layer.provide(DatabaseLive)
  )

program.pipe(Effect.provide(Layer.merge(WatchLive, dropSchema)), NodeRuntime.runMain)
