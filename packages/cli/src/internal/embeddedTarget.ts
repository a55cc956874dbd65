import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodePath from "node:path"
import { CliError } from "../CliError.js"
import type * as ConfigFile from "../ConfigFile.js"
import * as Database from "../Database.js"
import * as EmbeddedPostgres from "../EmbeddedPostgres.js"

/** Where the embedded PostgreSQL keeps its data for a project, relative to the project's folder. */
export const DATA_DIR = NodePath.join(".pgwatch", "embedded")

export interface Options {
  /** The project's folder: the config file's, else the current one. */
  readonly cwd: string
  readonly schema: Option.Option<string>
  readonly config: Option.Option<ConfigFile.Loaded>
  /** Prints a progress line. */
  readonly say: (line: string) => Effect.Effect<void>
}

/**
 * Starts the embedded PostgreSQL on the project's data (or joins the one another pgwatch
 * process runs on it) for the scope, and targets it.
 */
export const embeddedTarget = (options: Options) =>
  Effect.gen(function*() {
    const requested = NodePath.join(options.cwd, DATA_DIR)
    yield* options.say("Starting the embedded PostgreSQL ...")
    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => EmbeddedPostgres.start({ dataDir: requested }),
        catch: (cause) =>
          new CliError({
            reason: "Embedded",
            message: `cannot start the embedded PostgreSQL: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}`,
            cause
          })
      }),
      (server) => Effect.promise(() => server.stop()).pipe(Effect.timeout("20 seconds"), Effect.ignore)
    )
    const where = server.dataDir === requested
      ? NodePath.relative(process.cwd(), requested) || "."
      : `${server.dataDir} (the postgres user, which runs it as we are root, cannot reach ${requested})`
    yield* options.say(`PostgreSQL ${server.version} is up at ${server.url}, data in ${where}.`)
    return yield* Database.resolve({ databaseUrl: Option.some(server.url), schema: options.schema, config: options.config })
  })
