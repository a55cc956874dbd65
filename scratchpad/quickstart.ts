/**
 * The README's quick start, runnable: `npx tsx --conditions=source scratchpad/quickstart.ts`.
 *
 * A table with a trigger, a producer, and two consumers that print what they get. Then one
 * consumer stops, more is written, and on restart it plays back exactly what it missed.
 */
import { Consumer, Notification, PgWatch } from "@pgwatch/core"
import { PgClient } from "@effect/sql-pg"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Option, Queue, Schema } from "effect"
import { DatabaseLive } from "./database.js"

// A consumer of table changes, typed by the trigger's payload schema.
const makeAuditLog = (seen: Queue.Queue<void>) =>
  Consumer.make({
    id: "audit_log",
    channels: ["data_change"],
    schema: Notification.DataChange,
    handle: (n) =>
      Console.log(
        `[audit_log] #${n.id} ${n.payload.action} ${n.payload.table} ` +
          JSON.stringify(Option.getOrNull(Option.orElse(n.payload.newData, () => n.payload.oldData))) +
          (n.isReplay ? "  (replay)" : "")
      ).pipe(
        Effect.zipRight(Queue.offer(seen, undefined))
      )
  })

// A consumer of application events with its own payload schema.
const Greeting = Schema.Struct({ to: Schema.String })
const makeGreeter = (seen: Queue.Queue<void>) =>
  Consumer.make({
    id: "greeter",
    channels: ["greetings"],
    schema: Greeting,
    handle: (n) =>
      Console.log(`[greeter]   #${n.id} hello, ${n.payload.to}${n.isReplay ? "  (replay)" : ""}`).pipe(
        Effect.zipRight(Queue.offer(seen, undefined))
      )
  })

const takeN = (queue: Queue.Queue<void>, n: number) => Effect.replicateEffect(Queue.take(queue), n)

/** Runs consumers (each a Layer) while `body` runs, then stops them gracefully. */
const withConsumers = <A, E, R>(consumers: ReadonlyArray<Consumer.Consumer>, body: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.zipRight(Effect.forEach(consumers, (c) => Layer.build(Consumer.layer(c))), body))

const program = Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  yield* sql`CREATE TABLE IF NOT EXISTS customers (id serial PRIMARY KEY, name text NOT NULL)`
  yield* sql`SELECT pgwatch.add_data_change_trigger('customers'::regclass)`
  const audit = yield* Queue.unbounded<void>()
  const greets = yield* Queue.unbounded<void>()

  yield* Console.log("\n1. Both consumers running; the producer writes a row and sends an event.")
  yield* withConsumers([makeAuditLog(audit), makeGreeter(greets)], Effect.gen(function*() {
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO customers (name) VALUES ('Ada')`
      yield* PgWatch.notify("greetings", { to: "Ada" }, Greeting)
    }))
    yield* takeN(audit, 1)
    yield* takeN(greets, 1)
  }))

  yield* Console.log("\n2. Only the greeter runs; two more customers arrive while audit_log is down.")
  yield* withConsumers([makeGreeter(greets)], Effect.gen(function*() {
    yield* sql`INSERT INTO customers (name) VALUES ('Grace'), ('Linus')`
    yield* PgWatch.notifyMany("greetings", [{ to: "Grace" }, { to: "Linus" }], Greeting)
    yield* takeN(greets, 2)
  }))

  yield* Console.log("\n3. audit_log restarts: it plays back exactly what it missed, then follows live.")
  yield* Queue.takeAll(audit)
  yield* withConsumers([makeAuditLog(audit), makeGreeter(greets)], Effect.gen(function*() {
    yield* takeN(audit, 2)
    yield* sql`UPDATE customers SET name = 'Linus T.' WHERE name = 'Linus'`
    yield* takeN(audit, 1)
  }))
  yield* Console.log("\nDone. Run it again: each consumer resumes where it stopped.")
})

program.pipe(
  Effect.provide(PgWatch.layer({ migrate: true }).pipe(Layer.provideMerge(DatabaseLive))),
  NodeRuntime.runMain
)
