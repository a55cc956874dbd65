/**
 * The database the examples run on: DATABASE_URL (or PGWATCH_DATABASE_URL) when set, else an
 * embedded PostgreSQL kept in .pgwatch/embedded, so the examples work on a machine with no
 * server at all and a second run sees the first one's data.
 */
import { start } from "@pgwatch/cli/EmbeddedPostgres"
import { PgClient } from "@effect/sql-pg"
import { Console, Effect, Layer, Redacted } from "effect"

const configured = process.env.PGWATCH_DATABASE_URL ?? process.env.DATABASE_URL

const embedded = Effect.acquireRelease(
  Effect.promise(() => start({ dataDir: ".pgwatch/embedded", port: 54329 })).pipe(
    Effect.tap((server) => Console.log(`(embedded PostgreSQL ${server.version}, data in ${server.dataDir})`))
  ),
  (server) => Effect.promise(() => server.stop())
)

export const DatabaseLive = Layer.unwrapScoped(
  Effect.map(
    configured !== undefined ? Effect.succeed(configured) : Effect.map(embedded, (server) => server.url),
    (url) => PgClient.layer({ url: Redacted.make(url) })
  )
)
