/**
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Pg from "pg"
import * as Channel from "./Channel.js"
import * as Listener from "./internal/listener.js"
import * as Pages from "./internal/pages.js"
import * as Marks from "./internal/marks.js"
import * as Poller from "./internal/poller.js"
import * as SqlFiles from "./internal/sqlFiles.js"
import { withSpanIfTraced } from "./internal/tracing.js"
import * as Json from "./Json.js"
import * as Migrator from "./Migrator.js"
import { PgWatchError } from "./PgWatchError.js"

/**
 * Settings shared by everything pgwatch does in a process.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  /** The schema holding pgwatch's tables and functions. Default `pgwatch`. */
  readonly schema: string
  /** Notifications read per query during playback. Default 1000. */
  readonly pageSize: number
  /**
   * Payload bytes read per query: a page ends before its payloads pass this (a larger row
   * comes alone), so a backlog of big payloads cannot fill the heap. Default 16 MiB.
   */
  readonly pageBytes: number
  /** The longest a caught-up consumer waits without a wake-up before it looks at the log. */
  readonly pollInterval: Duration.Duration
  /**
   * How often a caught-up consumer looks at the log while no wake-ups can come: the listen
   * connection is lost or cannot deliver (a pooler in transaction mode). Default 250 ms.
   */
  readonly fallbackPollInterval: Duration.Duration
  /**
   * While writers outpace a consumer, the pause between its partial pages that lets rows
   * gather: fewer, fuller reads, and the server's time goes to the writers. It delays delivery
   * only then (by at most this much); a consumer that keeps up is woken at once. Default 25 ms.
   */
  readonly busyReadInterval: Duration.Duration
  /** The shortest time between two writes of a consumer's progress. */
  readonly commitInterval: Duration.Duration
  /** How often the listen connection is checked, and how long the check may take. */
  readonly healthCheckInterval: Duration.Duration
  readonly healthCheckTimeout: Duration.Duration
  /**
   * First delay before reconnecting a lost listen connection, and before restarting a
   * consumer whose run ended on an error; doubles up to the maximum.
   */
  readonly reconnectDelay: Duration.Duration
  /**
   * The longest of those delays; also how often a consumer stopped by a missing grant or
   * migration tries again, and a listen connection that cannot deliver is replaced.
   */
  readonly maxReconnectDelay: Duration.Duration
  /** How long a stopping consumer may spend finishing its in-flight handlers. */
  readonly shutdownTimeout: Duration.Duration
  /** Retries for consumers that do not bring their own schedule. */
  readonly retry: RetryPolicy
  /**
   * Channels whose payloads must not travel in NOTIFYs (any role in the database can LISTEN):
   * their consumers ask producers for ids only and read each row from the log, behind its
   * table privileges. A list of channels, or `"all"`. A consumer's own `confidential` option
   * overrides this. Default none.
   */
  readonly confidentialChannels: ReadonlyArray<string> | "all"
}

/**
 * How a failed handler is retried: exponential from `baseDelay`, jittered, each delay capped
 * at `maxDelay`, at most `maxRetries` times before the notification is dead-lettered.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicy {
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
  readonly maxRetries: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Partial<Omit<Settings, `${string}Interval` | `${string}Timeout` | `${string}Delay` | "retry">> {
  readonly retry?: {
    readonly baseDelay?: Duration.DurationInput | undefined
    readonly maxDelay?: Duration.DurationInput | undefined
    readonly maxRetries?: number | undefined
  } | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
  readonly fallbackPollInterval?: Duration.DurationInput | undefined
  readonly busyReadInterval?: Duration.DurationInput | undefined
  readonly commitInterval?: Duration.DurationInput | undefined
  readonly healthCheckInterval?: Duration.DurationInput | undefined
  readonly healthCheckTimeout?: Duration.DurationInput | undefined
  readonly reconnectDelay?: Duration.DurationInput | undefined
  readonly maxReconnectDelay?: Duration.DurationInput | undefined
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** Apply pending migrations when the layer starts. Default false. */
  readonly migrate?: boolean | undefined
  /**
   * Where the LISTEN connection goes, when the `PgClient` goes through a pooler in transaction
   * mode (where LISTEN cannot work): a direct or session-mode URL to the same database. What
   * it leaves out (user, password) comes from the `PG*` variables. Default: the `PgClient`'s
   * settings.
   */
  readonly listenUrl?: Redacted.Redacted | undefined
  /** Opens the listen connection; by default a `pg.Client` to `listenUrl` or with the `PgClient`'s settings. */
  readonly connectListener?: (() => Pg.Client) | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 */
export const defaults: Settings = {
  schema: "pgwatch",
  pageSize: 1000,
  pageBytes: 16 * 1024 * 1024,
  pollInterval: Duration.seconds(5),
  fallbackPollInterval: Duration.millis(250),
  busyReadInterval: Duration.millis(25),
  commitInterval: Duration.millis(50),
  healthCheckInterval: Duration.seconds(10),
  healthCheckTimeout: Duration.seconds(5),
  reconnectDelay: Duration.millis(500),
  maxReconnectDelay: Duration.seconds(30),
  shutdownTimeout: Duration.seconds(10),
  retry: { baseDelay: Duration.millis(200), maxDelay: Duration.seconds(30), maxRetries: 8 },
  confidentialChannels: []
}

/**
 * The pgwatch service: its settings, the database client and the shared listen connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgWatch {
  readonly settings: Settings
  readonly sql: PgClient.PgClient
  /** @internal */
  readonly listener: Listener.Listener
  /** Page reads shared by the consumers of this process. @internal */
  readonly pages: Pages.SharedPages
  /** @internal */
  readonly poller: Poller.Poller
  /** @internal */
  readonly marks: Marks.Marks
}

/**
 * @since 0.1.0
 * @category tags
 */
export const PgWatch: Context.Tag<PgWatch, PgWatch> = Context.GenericTag<PgWatch>("@pgwatch/PgWatch")

/**
 * Settings from options, with defaults filled in and values checked.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: Options): Effect.Effect<Settings, PgWatchError> => {
  const settings: Settings = {
    schema: options.schema ?? defaults.schema,
    pageSize: options.pageSize ?? defaults.pageSize,
    pageBytes: options.pageBytes ?? defaults.pageBytes,
    pollInterval: Duration.decode(options.pollInterval ?? defaults.pollInterval),
    fallbackPollInterval: Duration.decode(options.fallbackPollInterval ?? defaults.fallbackPollInterval),
    busyReadInterval: Duration.decode(options.busyReadInterval ?? defaults.busyReadInterval),
    commitInterval: Duration.decode(options.commitInterval ?? defaults.commitInterval),
    healthCheckInterval: Duration.decode(options.healthCheckInterval ?? defaults.healthCheckInterval),
    healthCheckTimeout: Duration.decode(options.healthCheckTimeout ?? defaults.healthCheckTimeout),
    reconnectDelay: Duration.decode(options.reconnectDelay ?? defaults.reconnectDelay),
    maxReconnectDelay: Duration.decode(options.maxReconnectDelay ?? defaults.maxReconnectDelay),
    shutdownTimeout: Duration.decode(options.shutdownTimeout ?? defaults.shutdownTimeout),
    retry: {
      baseDelay: Duration.decode(options.retry?.baseDelay ?? defaults.retry.baseDelay),
      maxDelay: Duration.decode(options.retry?.maxDelay ?? defaults.retry.maxDelay),
      maxRetries: options.retry?.maxRetries ?? defaults.retry.maxRetries
    },
    confidentialChannels: options.confidentialChannels ?? defaults.confidentialChannels
  }
  if (!SqlFiles.SCHEMA_NAME.test(settings.schema)) {
    return Effect.fail(new PgWatchError({
      reason: "Config",
      message: `invalid schema name "${settings.schema}": use lower-case letters, digits and _ (at most 63)`
    }))
  }
  if (!Number.isInteger(settings.pageSize) || settings.pageSize < 1) {
    return Effect.fail(new PgWatchError({ reason: "Config", message: `page size must be a positive integer, got ${settings.pageSize}` }))
  }
  if (!Number.isSafeInteger(settings.pageBytes) || settings.pageBytes < 1) {
    return Effect.fail(new PgWatchError({ reason: "Config", message: `page bytes must be a positive integer, got ${settings.pageBytes}` }))
  }
  if (!Number.isInteger(settings.retry.maxRetries) || settings.retry.maxRetries < 0) {
    return Effect.fail(new PgWatchError({ reason: "Config", message: `max retries must be a whole number, got ${settings.retry.maxRetries}` }))
  }
  // A misspelt name would leave a channel's payloads in its NOTIFYs: refuse what cannot be one.
  const notChannel = settings.confidentialChannels === "all"
    ? undefined
    : settings.confidentialChannels.find((name) => Either.isLeft(Channel.validate(name)))
  if (notChannel !== undefined) {
    return Effect.fail(new PgWatchError({
      reason: "Config",
      message: `confidential channels: "${notChannel}" is not a channel name (letters, digits, _ and $, not starting with a digit; or "all")`
    }))
  }
  return Effect.succeed(settings)
}

/**
 * The listen connection goes to `listenUrl` when given (TLS settings still the pool's), else to
 * the same server with the same credentials as the query pool.
 */
const listenerClient = (config: PgClient.PgClientConfig, listenUrl: Redacted.Redacted | undefined) => () =>
  new Pg.Client({
    ...(listenUrl !== undefined ? { connectionString: Redacted.value(listenUrl) } : {
      ...(config.url ? { connectionString: Redacted.value(config.url) } : {}),
      ...(config.host !== undefined ? { host: config.host } : {}),
      ...(config.port !== undefined ? { port: config.port } : {}),
      ...(config.database !== undefined ? { database: config.database } : {}),
      ...(config.username !== undefined ? { user: config.username } : {}),
      ...(config.password !== undefined ? { password: Redacted.value(config.password) } : {}),
      ...(config.stream !== undefined ? { stream: config.stream } : {})
    }),
    ...(config.ssl !== undefined ? { ssl: config.ssl } : {}),
    application_name: "pgwatch listener",
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000
  })

/**
 * Builds the service on the `PgClient` in context. Fails with a `NotMigrated` error naming the
 * fix when the schema has not been migrated (unless `migrate: true` applies it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const settings = yield* resolve(options)
    const sql = yield* PgClient.PgClient
    if (options.migrate === true) {
      yield* Migrator.migrate({ schema: settings.schema }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
    }
    yield* ensureMigrated(sql, settings.schema)
    // Consumers of processes that died without unregistering would make producers NOTIFY
    // for nobody; their listen connections are gone, which is how they are recognised
    // (registrations hold the pid the server reports, so a pooler's fake pid never matches).
    yield* sql`SELECT ${sql(settings.schema)}.forget_dead_waiters()`
    const listener = yield* Listener.make({
      connect: options.connectListener ?? listenerClient(sql.config, options.listenUrl),
      sendProbe: (channel, payload) => sql`SELECT pg_notify(${channel}, ${payload})`,
      fetchKey: sql<{ readonly key: string | null }>`SELECT ${sql(settings.schema)}.live_key() AS key`.pipe(
        Effect.flatMap(([row]) =>
          typeof row?.key === "string" ? Effect.succeed(Buffer.from(row.key, "hex")) : Effect.fail("live_key() gave no key")
        )
      ),
      schema: settings.schema,
      healthCheckInterval: settings.healthCheckInterval,
      healthCheckTimeout: settings.healthCheckTimeout,
      reconnectDelay: settings.reconnectDelay,
      maxReconnectDelay: settings.maxReconnectDelay,
      fallbackPollInterval: settings.fallbackPollInterval
    })
    const poller = yield* Poller.make({
      sql,
      schema: settings.schema,
      pollInterval: settings.pollInterval,
      fallbackPollInterval: settings.fallbackPollInterval,
      listener
    })
    const marks = yield* Marks.make(sql, settings.schema, listener)
    const pages = yield* Pages.makeShared()
    return { settings, sql, listener, pages, poller, marks } satisfies PgWatch
  })

const ensureMigrated = (sql: PgClient.PgClient, schema: string) =>
  Effect.gen(function*() {
    const pending = yield* Migrator.pending({ schema }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
    if (pending.length > 0) {
      return yield* new PgWatchError({
        reason: "NotMigrated",
        message: `the pgwatch schema "${schema}" is not up to date (${pending.length} migration(s) pending): run \`pgwatch migrate\``
      })
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<PgWatch, PgWatchError | SqlError, PgClient.PgClient> =>
  Layer.scoped(PgWatch, make(options))

/**
 * Settings from the environment: `PGWATCH_SCHEMA`, `PGWATCH_PAGE_SIZE`, `PGWATCH_PAGE_BYTES`, `PGWATCH_POLL_INTERVAL`
 * (a duration such as `5 seconds`), `PGWATCH_FALLBACK_POLL_INTERVAL`, `PGWATCH_HEALTH_CHECK_INTERVAL`,
 * `PGWATCH_HEALTH_CHECK_TIMEOUT`, `PGWATCH_RECONNECT_DELAY`, `PGWATCH_SHUTDOWN_TIMEOUT`,
 * `PGWATCH_RETRY_BASE_DELAY`, `PGWATCH_RETRY_MAX_DELAY`, `PGWATCH_MAX_RETRIES`, `PGWATCH_LISTEN_URL`,
 * `PGWATCH_CONFIDENTIAL_CHANNELS` (comma-separated channels, or `all`); each optional.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  schema: Config.string("PGWATCH_SCHEMA").pipe(Config.withDefault(defaults.schema)),
  pageSize: Config.integer("PGWATCH_PAGE_SIZE").pipe(Config.withDefault(defaults.pageSize)),
  pageBytes: Config.integer("PGWATCH_PAGE_BYTES").pipe(Config.withDefault(defaults.pageBytes)),
  pollInterval: Config.duration("PGWATCH_POLL_INTERVAL").pipe(Config.withDefault(defaults.pollInterval)),
  fallbackPollInterval: Config.duration("PGWATCH_FALLBACK_POLL_INTERVAL").pipe(
    Config.withDefault(defaults.fallbackPollInterval)
  ),
  healthCheckInterval: Config.duration("PGWATCH_HEALTH_CHECK_INTERVAL").pipe(
    Config.withDefault(defaults.healthCheckInterval)
  ),
  healthCheckTimeout: Config.duration("PGWATCH_HEALTH_CHECK_TIMEOUT").pipe(Config.withDefault(defaults.healthCheckTimeout)),
  reconnectDelay: Config.duration("PGWATCH_RECONNECT_DELAY").pipe(Config.withDefault(defaults.reconnectDelay)),
  shutdownTimeout: Config.duration("PGWATCH_SHUTDOWN_TIMEOUT").pipe(Config.withDefault(defaults.shutdownTimeout)),
  retry: Config.all({
    baseDelay: Config.duration("PGWATCH_RETRY_BASE_DELAY").pipe(Config.withDefault(defaults.retry.baseDelay)),
    maxDelay: Config.duration("PGWATCH_RETRY_MAX_DELAY").pipe(Config.withDefault(defaults.retry.maxDelay)),
    maxRetries: Config.integer("PGWATCH_MAX_RETRIES").pipe(Config.withDefault(defaults.retry.maxRetries))
  }),
  listenUrl: Config.option(Config.redacted("PGWATCH_LISTEN_URL")).pipe(Config.map(Option.getOrUndefined)),
  confidentialChannels: Config.string("PGWATCH_CONFIDENTIAL_CHANNELS").pipe(
    Config.map((text): ReadonlyArray<string> | "all" =>
      text.trim() === "all" ? "all" : text.split(",").map((c) => c.trim()).filter((c) => c !== "")
    ),
    Config.withDefault(defaults.confidentialChannels)
  )
})

/**
 * Whether a channel's payloads stay out of NOTIFYs for a consumer: its own choice, else the
 * service's `confidentialChannels`.
 *
 * @since 0.2.0
 * @category settings
 */
export const isConfidential = (settings: Settings, channel: string, own: boolean | undefined): boolean =>
  own ?? (settings.confidentialChannels === "all" || settings.confidentialChannels.includes(channel))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config<Options> = config,
  extra: Pick<Options, "migrate" | "connectListener"> = {}
): Layer.Layer<PgWatch, PgWatchError | SqlError | ConfigError.ConfigError, PgClient.PgClient> =>
  Layer.scoped(PgWatch, Effect.flatMap(settings, (options) => make({ ...options, ...extra })))

/**
 * Connections the query pool of a process opens at most (the listen connection is one more).
 * Consumers hold one only while a query runs, and idle ones share one poll per process, so a
 * few serve hundreds of consumers: 500 run on 5. Raise it when handlers run their own queries
 * on the same pool. Size `max_connections` as processes × (pool size + 1) plus headroom.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultPoolSize = 5

/**
 * The pool size from `PGWATCH_POOL_SIZE`, else `defaultPoolSize`; a positive whole number.
 *
 * @since 0.1.0
 * @category config
 */
export const poolSizeConfig: Config.Config<number> = Config.integer("PGWATCH_POOL_SIZE").pipe(
  Config.validate({ message: "PGWATCH_POOL_SIZE must be a positive whole number", validation: (n) => n >= 1 }),
  Config.withDefault(defaultPoolSize)
)

/**
 * Database settings from the environment: `PGWATCH_DATABASE_URL` or `DATABASE_URL`, else the
 * usual `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`; the pool size from
 * `PGWATCH_POOL_SIZE` (see `defaultPoolSize`).
 *
 * @since 0.1.0
 * @category config
 */
export const databaseConfig: Config.Config<PgClient.PgClientConfig> = Config.all({
  url: Config.option(Config.redacted("PGWATCH_DATABASE_URL").pipe(Config.orElse(() => Config.redacted("DATABASE_URL")))),
  host: Config.option(Config.string("PGHOST")),
  port: Config.option(Config.port("PGPORT")),
  database: Config.option(Config.string("PGDATABASE")),
  username: Config.option(Config.string("PGUSER")),
  password: Config.option(Config.redacted("PGPASSWORD")),
  maxConnections: poolSizeConfig
}).pipe(Config.map((c) => ({
  url: Option.getOrUndefined(c.url),
  host: Option.getOrUndefined(c.host),
  port: Option.getOrUndefined(c.port),
  database: Option.getOrUndefined(c.database),
  username: Option.getOrUndefined(c.username),
  password: Option.getOrUndefined(c.password),
  maxConnections: c.maxConnections,
  applicationName: "pgwatch"
})))

/**
 * A `PgClient` from `databaseConfig`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDatabase: Layer.Layer<PgClient.PgClient, SqlError | ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(databaseConfig, (config) => PgClient.layer(config))
).pipe(Layer.map((context) => Context.make(PgClient.PgClient, Context.get(context, PgClient.PgClient))))

const encodePayload = <A, I>(payload: A, schema: Schema.Schema<A, I> | undefined, root = "payload") =>
  schema === undefined
    ? Json.stringify(payload, root)
    : Schema.encode(schema)(payload).pipe(
      Effect.mapError((error) =>
        new PgWatchError({ reason: "InvalidPayload", message: ParseResult.TreeFormatter.formatErrorSync(error) })
      ),
      Effect.flatMap((encoded) => Json.stringify(encoded, root))
    )

/**
 * Stores a notification in the caller's transaction (if any) and wakes waiting consumers at
 * commit. Returns the log id. With a schema, the payload is encoded with it first.
 *
 * @since 0.1.0
 * @category producers
 */
export const notify = <A, I = A>(
  channel: string,
  payload: A,
  schema?: Schema.Schema<A, I>
): Effect.Effect<bigint, PgWatchError | SqlError, PgWatch> =>
  // A flat pipeline rather than a generator: producers call this once per notification, and
  // each step saved here is client CPU that a 2-core box would otherwise take from the server.
  Effect.flatMap(Effect.zip(Channel.validate(channel), encodePayload(payload, schema)), ([name, json]) =>
    Effect.flatMap(PgWatch, ({ settings, sql }) =>
      Effect.map(
        sql.unsafe<{ id: string }>(`SELECT ${Pg.escapeIdentifier(settings.schema)}.smart_notify($1, $2::jsonb)::text AS id`, [name, json]),
        (rows) => BigInt(rows[0]!.id)
      ))).pipe(withSpanIfTraced("PgWatch.notify", { captureStackTrace: false, attributes: { channel } }))

/**
 * Stores many notifications on one channel in one statement; returns their log ids in order.
 *
 * @since 0.1.0
 * @category producers
 */
export const notifyMany = <A, I = A>(
  channel: string,
  payloads: Iterable<A>,
  schema?: Schema.Schema<A, I>
): Effect.Effect<ReadonlyArray<bigint>, PgWatchError | SqlError, PgWatch> =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const name = yield* Channel.validate(channel)
    const json = yield* Effect.forEach(payloads, (payload, i) => encodePayload(payload, schema, `payloads[${i}]`))
    if (json.length === 0) return []
    const rows = yield* sql<{ id: string }>`
      SELECT id::text FROM ${sql(settings.schema)}.smart_notify_many(${name}, ${json}::jsonb[]) AS id`
    return rows.map((row) => BigInt(row.id))
  }).pipe(withSpanIfTraced("PgWatch.notifyMany", { captureStackTrace: false, attributes: { channel } }))
