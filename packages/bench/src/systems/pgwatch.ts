/**
 * pgwatch, the core library of this repository (`@pgwatch/core`, run from its TypeScript
 * sources), with its default settings. Producers call `PgWatch.notify` / `notifyMany`; each
 * consumer is a `Consumer.layer` with a no-op handler and its own cursor.
 */
import * as PgWatch from "@pgwatch/core/PgWatch"
import * as Consumer from "@pgwatch/core/Consumer"
// Deep imports, as the library's own modules do: the barrels load every module of effect and
// @effect/sql-pg, which a consumer child would carry as live heap (and V8 lets the heap grow to
// a multiple of that before a full collection).
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { bareProducer, createdAtBySeq, withClient } from "../pg.js"
import type { Consumers, Producer, System } from "../system.js"

const SCHEMA = "pgwatch"

const database = (url: string, maxConnections: number) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections, applicationName: "bench pgwatch" })

const watch = (url: string, maxConnections: number, migrate = false) =>
  PgWatch.layer({ schema: SCHEMA, migrate }).pipe(Layer.provideMerge(database(url, maxConnections)))

/** The consumer id of the topic's i-th consumer. */
const consumerId = (topic: string, i: number) => `${topic}_${i}`

export const system: System = {
  name: "pgwatch",
  label: "pgwatch 0.1.0 (this repo)",
  skipsLateCommits: false,
  notes:
    "Fan-out log: every consumer reads every notification with its own gap-free cursor (xid8 snapshots), progress committed per group, rows kept after handling. Default settings (page 1000, consumer concurrency 1).",
  setup: (url) => Effect.runPromise(Effect.scoped(Layer.build(watch(url, 2, true)))).then(() => undefined),
  prepare: async () => undefined,
  producer: async (url, topic, connections): Promise<Producer> => {
    const runtime = ManagedRuntime.make(watch(url, connections))
    await runtime.runPromise(Effect.void)
    return {
      send: (_, payload) => runtime.runPromise(PgWatch.notify(topic.name, payload)).then(() => undefined),
      sendBatch: (_, payloads) => runtime.runPromise(PgWatch.notifyMany(topic.name, payloads)).then(() => undefined),
      close: () => runtime.dispose()
    }
  },
  consume: async (url, topic, onHandled): Promise<Consumers> => {
    const consumers = Array.from({ length: topic.consumers }, (_, i) =>
      Consumer.layer(Consumer.make({
        id: consumerId(topic.name, i),
        channels: [topic.name],
        handle: (notification) => Effect.sync(() => onHandled(i, notification.payload))
      })))
    const layer = Layer.mergeAll(...(consumers as [Layer.Layer<never, never, PgWatch.PgWatch>])).pipe(
      Layer.provide(watch(url, topic.consumers + 2))
    )
    const scope = Effect.runSync(Scope.make())
    await Effect.runPromise(Layer.buildWithScope(layer, scope))
    return { stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
  },
  createdAt: (url, topic) =>
    withClient(url, async (client) => {
      const { rows } = await client.query<{ seq: number; us: string }>(
        `SELECT (payload->>'seq')::int AS seq, (extract(epoch FROM created_at) * 1e6)::bigint::text AS us
           FROM ${SCHEMA}.notification_log WHERE channel = $1`,
        [topic.name]
      )
      return createdAtBySeq(rows)
    })
}

/**
 * pgwatch again, with producers calling the SQL API (`smart_notify`, `smart_notify_many`)
 * through bare `pg`, as any client or language can: the same server work as `PgWatch.notify`
 * without the Effect and @effect/sql client path, so the difference between the two rows is
 * client CPU, which on a 2-core box is taken from the server. Consumers are unchanged.
 */
export const sqlProducers: System = {
  ...system,
  name: "pgwatch-sql",
  label: "pgwatch, producers through SQL (bare pg)",
  notes: "pgwatch with producers calling `SELECT pgwatch.smart_notify($1, $2)` (or `smart_notify_many`) through bare `pg` instead of `PgWatch.notify`; consumers as for pgwatch. Run in the live and notify-cost scenarios only.",
  scenarios: ["live", "notify-cost"],
  producer: (url, topic, connections) =>
    bareProducer(url, topic.name, connections, "bench pgwatch-sql producer", {
      one: `SELECT ${SCHEMA}.smart_notify($1, $2::jsonb)`,
      many: `SELECT ${SCHEMA}.smart_notify_many($1, $2::jsonb[])`
    })
}

/**
 * Registers a consumer that waits on `channel` for ever and never reads, so that every
 * producer commit sends a NOTIFY: pgwatch's worst case. Returns the undo.
 */
export const holdWaiting = (url: string, channel: string) =>
  withClient(url, async (client) => {
    await client.query(
      `INSERT INTO ${SCHEMA}.waiting (channel, consumer_id, backend_pid) VALUES ($1, 'bench-always-waiting', pg_backend_pid())`,
      [channel]
    )
  }).then(() => () =>
    withClient(url, (client) =>
      client.query(`DELETE FROM ${SCHEMA}.waiting WHERE consumer_id = 'bench-always-waiting'`)
    ).then(() => undefined)
  )
