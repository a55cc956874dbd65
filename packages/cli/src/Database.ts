/**
 * Which database and schema a command works on, and the layers that reach them.
 *
 * Precedence, highest first: command-line flags (`--database-url`, `--schema`, `--listen-url`,
 * `--pool-size`, applied by `listen` over what is resolved here), the config file (`database`, `schema`, `database.listenUrl`,
 * `database.poolSize`), the environment (`PGWATCH_DATABASE_URL` or `DATABASE_URL`, the `PG*`
 * variables, `PGWATCH_SCHEMA`, `PGWATCH_LISTEN_URL`, `PGWATCH_POOL_SIZE`), then defaults (pg's
 * own: localhost:5432; schema `pgwatch`; the listen connection like the others; a pool of
 * `PgWatch.defaultPoolSize`).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgWatch from "@pgwatch/core/PgWatch"
import type { PgWatchError } from "@pgwatch/core/PgWatchError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Pg from "pg"
import { parse as parseConnectionString } from "pg-connection-string"
import { CliError } from "./CliError.js"
import type * as ConfigFile from "./ConfigFile.js"
import { redactText } from "./internal/redact.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Target {
  readonly client: PgClient.PgClientConfig
  /** `host:port/database` as pg will connect, for messages (see `label`). */
  readonly label: string
  /** Whether anything named a database (a flag, the config file or the environment). */
  readonly configured: boolean
  readonly schema: string
  /** Where the LISTEN connection goes, if not where the others go. */
  readonly listenUrl?: Redacted.Redacted | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TargetOptions {
  readonly databaseUrl: Option.Option<string>
  readonly schema: Option.Option<string>
  readonly config: Option.Option<ConfigFile.Loaded>
  readonly listenUrl?: Option.Option<string> | undefined
}

const fromUrl = (url: string): PgClient.PgClientConfig => ({ url: Redacted.make(url) })

const fromFile = (database: string | ConfigFile.DatabaseConfig): PgClient.PgClientConfig =>
  typeof database === "string" ? fromUrl(database) : {
    ...(database.url !== undefined ? { url: Redacted.make(database.url) } : {}),
    ...(database.host !== undefined ? { host: database.host } : {}),
    ...(database.port !== undefined ? { port: database.port } : {}),
    ...(database.database !== undefined ? { database: database.database } : {}),
    ...(database.user !== undefined ? { username: database.user } : {}),
    ...(database.password !== undefined ? { password: Redacted.make(database.password) } : {}),
    ...(database.ssl !== undefined ? { ssl: database.ssl } : {})
  }

/** Whether a config file's `database` sets anything about the server (`listenUrl` aside). */
const namesServer = (database: string | ConfigFile.DatabaseConfig): boolean =>
  typeof database === "string" ||
  [database.url, database.host, database.port, database.database, database.user, database.password, database.ssl]
    .some((value) => value !== undefined)

/**
 * Where pg will really connect, for messages: `host:port/database`, worked out by pg itself
 * (a `pg.Client` built with the options @effect/sql-pg gives its pool, which reads the URL with
 * pg-connection-string and fills gaps from the PG* variables and pg's defaults; nothing
 * connects). A value that is not a postgres:// URL (`DATABASE_URL=foo` is read as database
 * "foo" on a host named "base") and a missing database name (pg then uses the user name) are
 * said, since neither is what the user meant. The URL itself is never printed: it may hold a
 * password.
 */
export const label = (client: PgClient.PgClientConfig): string => {
  const url = client.url === undefined ? undefined : Redacted.value(client.url)
  try {
    return pgLabel(client, url)
  } catch {
    // pg cannot read the URL at all; connecting reports why (without the URL).
    return "a database URL pg cannot read"
  }
}

const pgLabel = (client: PgClient.PgClientConfig, url: string | undefined): string => {
  const pg = new Pg.Client({
    ...(url !== undefined ? { connectionString: url } : {}),
    ...(client.username !== undefined ? { user: client.username } : {}),
    ...(client.host !== undefined ? { host: client.host } : {}),
    ...(client.database !== undefined ? { database: client.database } : {}),
    ...(client.port !== undefined ? { port: client.port } : {})
  })
  const notes: Array<string> = []
  let named = client.database ?? process.env.PGDATABASE
  if (url !== undefined) {
    if (!/^(postgres|postgresql|socket):/i.test(url)) {
      notes.push(`the database URL is not a postgres:// URL, so pg read it as database "${pg.database}" on host "${pg.host}"`)
    }
    try {
      named = parseConnectionString(url).database ?? named
    } catch {
      // pg reports a malformed URL itself when connecting.
    }
  }
  if ((named === undefined || named === "") && typeof pg.database === "string" && pg.database !== "") {
    notes.push(`no database named, so pg uses the user name "${pg.database}": give one in the URL (.../mydb) or PGDATABASE`)
  }
  const database = typeof pg.database === "string" && pg.database !== "" ? `/${pg.database}` : ""
  return `${pg.host}:${pg.port}${database}${notes.length === 0 ? "" : ` (${notes.join("; ")})`}`
}

/**
 * Works out the database and schema for a command.
 *
 * @since 0.1.0
 * @category resolving
 */
export const resolve = (options: TargetOptions): Effect.Effect<Target, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const env = yield* PgWatch.databaseConfig
    const envSchema = yield* Config.option(Config.string("PGWATCH_SCHEMA"))
    const file = Option.map(options.config, (loaded) => loaded.config)
    const fileEntry = Option.flatMapNullable(file, (config) => config.database)
    // `database: { url: process.env.APP_DATABASE_URL }` with that variable unset names no server:
    // the environment's settings apply, as if the file said nothing.
    const fileDatabase = Option.filter(fileEntry, namesServer)
    const client = Option.isSome(options.databaseUrl)
      ? fromUrl(options.databaseUrl.value)
      : Option.isSome(fileDatabase)
      ? fromFile(fileDatabase.value)
      : env
    const configured = Option.isSome(options.databaseUrl) || Option.isSome(fileDatabase) ||
      env.url !== undefined || env.host !== undefined
    const schema = Option.getOrElse(
      Option.orElse(options.schema, () => Option.orElse(Option.flatMapNullable(file, (c) => c.schema), () => envSchema)),
      () => PgWatch.defaults.schema
    )
    const fileListenUrl = Option.flatMapNullable(fileEntry, (database) => typeof database === "string" ? undefined : database.listenUrl)
    const envListenUrl = yield* Config.option(Config.string("PGWATCH_LISTEN_URL"))
    const listenUrl = Option.getOrUndefined(Option.map(
      Option.orElse(options.listenUrl ?? Option.none(), () => Option.orElse(fileListenUrl, () => envListenUrl)),
      Redacted.make
    ))
    const filePoolSize = Option.flatMapNullable(fileEntry, (database) => typeof database === "string" ? undefined : database.poolSize)
    const envPoolSize = yield* PgWatch.poolSizeConfig
    const maxConnections = Option.getOrElse(filePoolSize, () => envPoolSize)
    return { client: { ...client, maxConnections }, label: label(client), configured, schema, listenUrl }
  })

const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: "connection refused (is PostgreSQL running there?)",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ECONNRESET: "connection reset",
  "28P01": "password authentication failed",
  "28000": "not allowed to connect",
  "3D000": "database does not exist"
}

/** pg's words when the server asks for a password (SCRAM or MD5) and it has none. */
const NO_PASSWORD = /client password must be a string|password authentication failed: no password/i

const codeOf = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  const c = cause as { readonly code?: unknown; readonly errors?: ReadonlyArray<unknown> }
  if (typeof c.code === "string") return c.code
  return c.errors?.map(codeOf).find((code) => code !== undefined)
}

const messageOf = (cause: unknown): string =>
  cause instanceof Error && cause.message !== "" ? cause.message.split("\n")[0]! : String(cause)

/** A known code in words, then PostgreSQL's message unless it already begins with those words. */
const knownCause = (code: string | undefined, message: string): string | undefined => {
  const words = code === undefined ? undefined : CONNECTION_CODES[code]
  if (code === undefined || words === undefined) return undefined
  if (code.startsWith("E")) return words
  return message.startsWith(words) ? message : `${words}: ${message}`
}

/**
 * One line saying why the database could not be reached, and where it was looked for.
 *
 * @since 0.1.0
 * @category errors
 */
export const connectionError = (target: Target, error: SqlError): CliError => {
  const code = codeOf(error.cause)
  const message = messageOf(error.cause ?? error)
  const why = knownCause(code, message) ?? (
    NO_PASSWORD.test(message)
      ? "the server asks for a password and none was given: put it in the URL (user:password@host) or PGPASSWORD"
      : error.message.includes("timed out")
      ? "timed out after 5 seconds"
      : message
  )
  const hint = target.configured
    ? ""
    : "; no database configured: set DATABASE_URL, or add --embedded to run on a local embedded PostgreSQL"
  return new CliError({
    reason: "Connection",
    message: `cannot connect to PostgreSQL at ${target.label}: ${redactText(why)}${hint}`,
    cause: error
  })
}

/**
 * A `PgClient` for the target; failing to connect is a `CliError` naming the server.
 *
 * @since 0.1.0
 * @category layers
 */
export const sqlLayer = (target: Target): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, CliError> =>
  PgClient.layer({ connectTimeout: "5 seconds", ...target.client, applicationName: "pgwatch" }).pipe(
    Layer.mapError((error) => connectionError(target, error))
  )

/**
 * The pgwatch service on the target (its schema must be migrated: else `NotMigrated`, whose
 * message says to run `pgwatch migrate`), with the `PgClient` beside it. Its settings come from
 * the environment the way the library reads them (`PgWatch.config`: `PGWATCH_MAX_RETRIES`,
 * `PGWATCH_POLL_INTERVAL`, ...); `options` (the command's flags) override them.
 *
 * @since 0.1.0
 * @category layers
 */
export const watchLayer = (
  target: Target,
  options: PgWatch.Options = {}
): Layer.Layer<
  PgWatch.PgWatch | PgClient.PgClient | SqlClient.SqlClient,
  CliError | PgWatchError | SqlError | ConfigError.ConfigError
> =>
  // The library's settings from the environment (PgWatch.config); what the command sets wins.
  Layer.unwrapEffect(Effect.map(PgWatch.config, (fromEnv) =>
    PgWatch.layer({ ...fromEnv, listenUrl: target.listenUrl, ...options, schema: target.schema }).pipe(
      Layer.provideMerge(sqlLayer(target))
    )))
