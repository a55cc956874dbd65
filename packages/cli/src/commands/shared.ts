/**
 * The options every database command takes, and the database they select.
 *
 * @since 0.1.0
 */
import * as Options from "@effect/cli/Options"
import * as PgWatch from "@pgwatch/core/PgWatch"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodePath from "node:path"
import { CliError } from "../CliError.js"
import * as ConfigFile from "../ConfigFile.js"
import * as Database from "../Database.js"
import * as EmbeddedTarget from "../internal/embeddedTarget.js"
import * as Output from "../internal/output.js"

/**
 * `--config`, `--database-url`, `--schema`, `--embedded`.
 *
 * @since 0.1.0
 * @category options
 */
export const shared = {
  config: Options.text("config").pipe(
    Options.withAlias("c"),
    Options.withDescription(
      `The config file. Default: the first of ${ConfigFile.fileNames.join(", ")} in the current folder or a parent.`
    ),
    Options.optional
  ),
  databaseUrl: Options.text("database-url").pipe(
    Options.withDescription(
      "PostgreSQL URL. Default: the config file's database, else PGWATCH_DATABASE_URL, DATABASE_URL or the PG* variables."
    ),
    Options.optional
  ),
  schema: Options.text("schema").pipe(
    Options.withDescription("Schema of pgwatch's tables. Default: the config file's schema, else PGWATCH_SCHEMA, else pgwatch."),
    Options.optional
  ),
  embedded: Options.boolean("embedded").pipe(
    Options.withDescription(
      "Run on a local embedded PostgreSQL instead of a configured database (started for the command, or joined if " +
        "another pgwatch runs it; data in .pgwatch/embedded beside the config file, shared with pgwatch demo)."
    )
  )
}

/**
 * @since 0.1.0
 * @category options
 */
export interface Shared {
  readonly config: Option.Option<string>
  readonly databaseUrl: Option.Option<string>
  readonly schema: Option.Option<string>
  readonly embedded: boolean
}

/**
 * The database a command works on: the configured one, or with --embedded the embedded server (for the run).
 *
 * @since 0.1.0
 * @category resolving
 */
export const targetFor = (
  options: Shared,
  config: Option.Option<ConfigFile.Loaded>,
  listenUrl: Option.Option<string> = Option.none()
) => Effect.zipRight(typedSchema(options.schema), databaseFor(options, config, listenUrl))

/** A --schema PostgreSQL cannot take unquoted is typed wrong: a usage error, before connecting. */
export const typedSchema = (schema: Option.Option<string>) =>
  Option.isNone(schema) ? Effect.void : PgWatch.resolve({ schema: schema.value }).pipe(
    Effect.mapError((error) => new CliError({ reason: "InvalidInput", message: error.message }))
  )

const databaseFor = (
  options: Shared,
  config: Option.Option<ConfigFile.Loaded>,
  listenUrl: Option.Option<string>
) =>
  !options.embedded
    ? Database.resolve({ databaseUrl: options.databaseUrl, schema: options.schema, config, listenUrl })
    : Option.isSome(options.databaseUrl)
    ? Effect.fail(new CliError({ reason: "InvalidInput", message: "--embedded and --database-url name two databases: give one" }))
    : EmbeddedTarget.embeddedTarget({
      cwd: Option.match(config, { onNone: () => process.cwd(), onSome: (loaded) => NodePath.dirname(loaded.path) }),
      schema: options.schema,
      config,
      say: Output.err
    })

/**
 * The config file (if any) and the database of a command.
 *
 * @since 0.1.0
 * @category resolving
 */
export const setup = (options: Shared) =>
  Effect.gen(function*() {
    const config = yield* ConfigFile.find({ path: options.config, cwd: process.cwd() })
    const target = yield* targetFor(options, config)
    return { config, target }
  })

/**
 * Runs an effect with the pgwatch service (and fails with `NotMigrated` on an unmigrated schema).
 *
 * @since 0.1.0
 * @category resolving
 */
export const withWatch = <A, E, R>(options: Shared, effect: (target: Database.Target) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const { target } = yield* setup(options)
    return yield* effect(target).pipe(Effect.provide(Database.watchLayer(target)))
  })

