/**
 * The README's quick-start code as an app that runs until Ctrl-C:
 * `DATABASE_URL=postgres://... npx tsx --conditions=source scratchpad/app.ts`
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Consumer, Notification, PgWatch } from "@pgwatch/core"
import { Config, Console, Effect, Layer, Schema } from "effect"

// Producers: store a notification in your own transaction; it is delivered iff you commit.
const Greeting = Schema.Struct({ to: Schema.String })
export const signUp = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO customers (name) VALUES (${name})` // a table trigger notifies too
      yield* PgWatch.notify("greetings", { to: name }, Greeting) // returns the log id
    }))
  })

// Consumers: an id (progress is stored under it), channels, a payload schema, a handler.
const greeter = Consumer.make({
  id: "greeter",
  channels: ["greetings"],
  schema: Greeting,
  handle: (n) => Console.log(`hello, ${n.payload.to}${n.isReplay ? " (replay)" : ""}`)
})

const auditLog = Consumer.make({
  id: "audit_log",
  channels: ["data_change"],
  schema: Notification.DataChange, // what table triggers send
  handle: (n) => Console.log(n.payload.action, n.payload.table, n.payload.new_data)
})

// An app merges the consumer layers it wants; each runs as its own supervised fiber.
const AppLive = Layer.mergeAll(Consumer.layer(greeter), Consumer.layer(auditLog)).pipe(
  Layer.provideMerge(PgWatch.layer({ migrate: true })),
  Layer.provideMerge(PgClient.layerConfig({ url: Config.redacted("DATABASE_URL") }))
)

Layer.launch(AppLive).pipe(NodeRuntime.runMain)
