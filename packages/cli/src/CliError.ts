/**
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * A failure of the command itself, with a one-line message a person can act on; printed
 * without a stack trace. `reason` says which kind, for tests and scripts.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly reason:
    | "ConfigNotFound"
    | "ConfigInvalid"
    | "AppImport"
    | "DuplicateConsumer"
    | "UnknownName"
    | "NoConsumers"
    | "Connection"
    | "InvalidInput"
    | "Embedded"
  readonly message: string
  readonly cause?: unknown
}> {}
