/**
 * The project's `pgwatch.config.ts` (or `.mts`, `.js`, `.mjs`): which apps it has, where each
 * app's consumers are exported, and how to reach the database.
 *
 * ```ts
 * // pgwatch.config.ts
 * import { defineConfig } from "@pgwatch/cli"
 *
 * export default defineConfig({
 *   apps: {
 *     orders: "./src/orders/consumers.ts",
 *     billing: () => import("./src/billing/consumers.js")
 *   },
 *   database: { url: process.env.APP_DATABASE_URL, listenUrl: process.env.APP_DIRECT_URL },
 *   schema: "pgwatch"
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import { CliError } from "./CliError.js"
import * as Loader from "./internal/loader.js"
import * as Redact from "./internal/redact.js"

/**
 * An app's consumers: a module path (relative to the config file) or a function that imports
 * the module. Every `Consumer` the module exports (also inside exported arrays) is discovered.
 *
 * @since 0.1.0
 * @category models
 */
export type AppModule = string | (() => Promise<unknown>)

/**
 * How to reach PostgreSQL. A URL, or the parts; what is left out falls back to the usual
 * `PG*` environment variables.
 *
 * @since 0.1.0
 * @category models
 */
export interface DatabaseConfig {
  readonly url?: string | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  readonly user?: string | undefined
  readonly password?: string | undefined
  readonly ssl?: boolean | undefined
  /**
   * A direct or session-mode URL for the LISTEN connection, when the others go through a
   * pooler in transaction mode (where LISTEN cannot work). Default `PGWATCH_LISTEN_URL`, else
   * the same settings as the rest.
   */
  readonly listenUrl?: string | undefined
  /**
   * Connections the query pool opens at most (the listen connection is one more). Default
   * `PGWATCH_POOL_SIZE`, else 5: enough for hundreds of consumers whose handlers do not query
   * through the same pool.
   */
  readonly poolSize?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Config {
  /** App name to the module exporting its consumers. */
  readonly apps: Readonly<Record<string, AppModule>>
  /** The database; by default `PGWATCH_DATABASE_URL`, `DATABASE_URL` or `PG*` variables. */
  readonly database?: string | DatabaseConfig | undefined
  /** The schema holding pgwatch's tables; default `PGWATCH_SCHEMA`, else `pgwatch`. */
  readonly schema?: string | undefined
  /** Services the consumers' handlers need, provided to every consumer `listen` runs. */
  readonly layer?: Layer.Layer<any, any, never> | undefined
}

/**
 * Types a config file's default export.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defineConfig = (config: Config): Config => config

/**
 * A config file, loaded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded {
  /** Absolute path of the file. */
  readonly path: string
  readonly config: Config
}

/**
 * The file names looked for, in order, in the current folder and then each parent.
 *
 * @since 0.1.0
 * @category constants
 */
export const fileNames = ["pgwatch.config.ts", "pgwatch.config.mts", "pgwatch.config.js", "pgwatch.config.mjs"] as const

const AppModuleSchema = Schema.Union(
  Schema.String.pipe(Schema.minLength(1)),
  Schema.declare((u): u is () => Promise<unknown> => typeof u === "function", {
    identifier: "ImportFunction",
    description: "a function such as () => import(\"./consumers.js\")"
  })
)

const DatabaseSchema = Schema.Union(
  Schema.String,
  Schema.Struct({
    url: Schema.optional(Schema.UndefinedOr(Schema.String)),
    host: Schema.optional(Schema.UndefinedOr(Schema.String)),
    port: Schema.optional(Schema.UndefinedOr(Schema.Int)),
    database: Schema.optional(Schema.UndefinedOr(Schema.String)),
    user: Schema.optional(Schema.UndefinedOr(Schema.String)),
    password: Schema.optional(Schema.UndefinedOr(Schema.String)),
    ssl: Schema.optional(Schema.UndefinedOr(Schema.Boolean)),
    listenUrl: Schema.optional(Schema.UndefinedOr(Schema.String)),
    poolSize: Schema.optional(Schema.UndefinedOr(Schema.Int.pipe(Schema.positive())))
  })
)

const ConfigSchema = Schema.Struct({
  apps: Schema.Record({ key: Schema.String, value: AppModuleSchema }),
  database: Schema.optional(Schema.UndefinedOr(DatabaseSchema)),
  schema: Schema.optional(Schema.UndefinedOr(Schema.String)),
  layer: Schema.optional(Schema.UndefinedOr(Schema.declare(
    (u): u is Layer.Layer<any, any, never> => Layer.isLayer(u),
    { identifier: "Layer" }
  )))
})

const decodeConfig = Schema.decodeUnknown(ConfigSchema, { onExcessProperty: "error" })

/** A password's stand-in of the same type, so that it is exactly as valid, or invalid. */
const maskValue = (value: unknown): unknown =>
  typeof value === "string"
    ? Redact.MASK
    : typeof value === "number"
    ? 0
    : Array.isArray(value)
    ? []
    : typeof value === "object" && value !== null
    ? {}
    : value

/**
 * The config with its database password and the passwords of its URLs (`url`, `listenUrl`)
 * masked: what a decode error may print (it shows the values it rejects).
 */
const withoutSecrets = (input: unknown): unknown => {
  if (typeof input !== "object" || input === null || !("database" in input)) return input
  const database: unknown = input.database
  if (typeof database === "string") return { ...input, database: Redact.redactUrl(database) }
  if (typeof database !== "object" || database === null) return input
  const masked: Record<string, unknown> = { ...database }
  for (const key of ["url", "listenUrl"]) {
    if (typeof masked[key] === "string") masked[key] = Redact.redactUrl(masked[key])
  }
  if ("password" in masked) masked.password = maskValue(masked.password)
  return { ...input, database: masked }
}

/** The config file in `dir` or the nearest parent folder that has one. */
const discover = (dir: string): string | undefined => {
  for (let current = NodePath.resolve(dir);;) {
    for (const name of fileNames) {
      const candidate = NodePath.join(current, name)
      if (NodeFs.existsSync(candidate)) return candidate
    }
    const parent = NodePath.dirname(current)
    if (parent === current) return undefined
    current = parent
  }
}

/** The first lines of an import failure, without the stack. */
export const describeImportError = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message : String(cause)
  const lines = text.split("\n").map((line) => line.trimEnd()).filter((line) => line !== "")
  return lines.slice(0, 4).join(" | ")
}

const load = (path: string) =>
  Effect.gen(function*() {
    if (!NodeFs.existsSync(path)) {
      return yield* new CliError({ reason: "ConfigNotFound", message: `config file ${path} does not exist` })
    }
    const module = yield* Effect.tryPromise({
      try: async () => {
        await Loader.ensure()
        return (await import(pathToFileURL(path).href)) as { readonly default?: unknown }
      },
      catch: (cause) =>
        new CliError({
          reason: "ConfigInvalid",
          message: `cannot load config file ${path}: ${describeImportError(cause)}`,
          cause
        })
    })
    if (module.default === undefined) {
      return yield* new CliError({
        reason: "ConfigInvalid",
        message: `config file ${path} has no default export: write \`export default defineConfig({ apps: { ... } })\``
      })
    }
    const config = yield* decodeConfig(module.default).pipe(
      // The error is described from a copy without passwords, which fails the same way.
      Effect.catchAll((error) =>
        Effect.flatMap(Effect.either(decodeConfig(withoutSecrets(module.default))), (masked) =>
          Effect.fail(Either.isLeft(masked) ? masked.left : error))
      ),
      Effect.mapError((error) =>
        new CliError({
          reason: "ConfigInvalid",
          message: `config file ${path} is invalid: ${
            Redact.redactText(ParseResult.TreeFormatter.formatErrorSync(error).replaceAll("\n", " "))
          }`
        })
      )
    )
    return { path, config: config as Config } satisfies Loaded
  })

/**
 * Loads the config file: the one given, else the first of `fileNames` found in `cwd` or a
 * parent folder; none when there is none (commands that need apps then say so).
 *
 * @since 0.1.0
 * @category loading
 */
export const find = (
  options: { readonly path: Option.Option<string>; readonly cwd: string }
): Effect.Effect<Option.Option<Loaded>, CliError> =>
  Option.match(options.path, {
    onSome: (path) => Effect.map(load(NodePath.resolve(options.cwd, path)), Option.some),
    onNone: () => {
      const found = discover(options.cwd)
      return found === undefined ? Effect.succeedNone : Effect.map(load(found), Option.some)
    }
  })

/**
 * Like `find`, but a missing config file is an error that says what to create.
 *
 * @since 0.1.0
 * @category loading
 */
export const findOrFail = (options: { readonly path: Option.Option<string>; readonly cwd: string }) =>
  Effect.flatMap(find(options), (found) =>
    Option.match(found, {
      onSome: Effect.succeed,
      onNone: () =>
        Effect.fail(
          new CliError({
            reason: "ConfigNotFound",
            message: `no ${fileNames.join(", ")} in ${options.cwd} or its parent folders: create one ` +
              `(export default defineConfig({ apps: { myapp: "./src/consumers.ts" } })) or pass --config`
          })
        )
    }))
