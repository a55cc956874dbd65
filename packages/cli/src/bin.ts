/**
 * The process around the command: logs to standard error, errors as one line without a stack
 * trace, exit codes (0 done or stopped by a signal, 1 failed, 2 bad usage), and signals (the
 * first stops gracefully, a second exits at once).
 *
 * @since 0.1.0
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Cli from "./Cli.js"
import { describeError, exitCode } from "./internal/errors.js"
import * as Output from "./internal/output.js"

/** Log lines go to standard error, short: `WARN message key=value`. */
const stderrLogger = Logger.make(({ annotations, cause, logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : Cause.isCause(m) ? Cause.pretty(m) : Output.inline(m))).join(" ")
  const extra = HashMap.toEntries(annotations).map(([key, value]) => ` ${key}=${typeof value === "string" ? value : Output.inline(value)}`).join("")
  const failure = Cause.isEmpty(cause) ? "" : ` ${Cause.pretty(cause).split("\n")[0]}`
  process.stderr.write(`${logLevel.label} ${text}${extra}${failure}\n`)
})

const LoggerLive = Logger.replace(Logger.defaultLogger, stderrLogger)

/** Set when the command failed with an error already printed; the teardown exits with it. */
let failureCode = 0

const main = Cli.run(process.argv).pipe(
  Effect.catchAll((error) => {
    if (ValidationError.isValidationError(error)) {
      // @effect/cli has printed the problem and the usage.
      failureCode = 2
      return Effect.void
    }
    failureCode = exitCode(error)
    return Effect.sync(() => process.stderr.write(`pgwatch: ${describeError(error)}\n`))
  }),
  Effect.catchAllDefect((defect) =>
    Effect.sync(() => {
      failureCode = 1
      process.stderr.write(`pgwatch: internal error (please report): ${Cause.pretty(Cause.die(defect))}\n`)
    })
  ),
  Effect.provide(Layer.merge(NodeContext.layer, LoggerLive))
)

// runMain interrupts the command on the first SIGINT/SIGTERM (graceful stop) and then stops
// listening; this handler says what is happening, exits at once on a second signal, and
// bounds how long a graceful stop may take.
let signals = 0
const GRACE_MS = 30_000
const onSignal = (signal: NodeJS.Signals) => {
  signals += 1
  if (signals === 1) {
    process.stderr.write(`pgwatch: ${signal}: stopping (in-flight work finishes, progress is saved); signal again to exit at once\n`)
    setTimeout(() => {
      process.stderr.write(`pgwatch: did not stop within ${GRACE_MS / 1000}s; exiting\n`)
      process.exit(1)
    }, GRACE_MS).unref()
  } else {
    process.stderr.write(`pgwatch: ${signal} again: exiting now\n`)
    process.exit(signal === "SIGINT" ? 130 : 143)
  }
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) => {
    const code = Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? 1 : failureCode
    onExit(code)
    process.exit(code)
  }
})
