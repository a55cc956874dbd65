import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Roles from "../Roles.js"
import { PgWatchError } from "../PgWatchError.js"
import { describe } from "./describe.js"
import { databaseError } from "./sqlState.js"

/**
 * What a consumer's run ended with, and so what its supervisor does:
 * - `Transient`: restart after a backoff (a lost connection, a bug that may not recur);
 * - `Misconfigured`: something outside the process is missing (a grant, a migration); no
 *   restart fixes it but an operator may, so it is logged once and retried quietly at the
 *   longest delay;
 * - `Fatal`: nothing outside the process can fix it (a missing service, an invalid
 *   consumer); the consumer stops.
 */
export type Diagnosis =
  | { readonly _tag: "Transient"; readonly description: string }
  | { readonly _tag: "Misconfigured"; readonly description: string; readonly fix: string }
  | { readonly _tag: "Fatal"; readonly error: PgWatchError }

/** The grants a consumer's role needs on each table (README "Roles and privileges"). */
const consumerPrivileges: Record<string, string> = Object.fromEntries(
  Roles.privileges.consumer.flatMap((p) => "table" in p.on ? [[p.on.table, p.privileges]] : [])
)

const field = (u: unknown, key: string): unknown => {
  try {
    return typeof u === "object" && u !== null ? (u as Record<string, unknown>)[key] : undefined
  } catch {
    return undefined
  }
}

/**
 * A `Fatal` error for a handler that needs a service nobody provided.
 */
export const missingServiceError = (consumerId: string, service: string) =>
  new PgWatchError({
    reason: "Config",
    message: `consumer "${consumerId}" needs service ${service}, which is not provided: ` +
      `provide it to Consumer.layer (with the CLI: in the config file's \`layer\`)`
  })

/** Whether a defect is Effect's `Service not found: Mailer (defined at …)`, and for which service. */
export const serviceNotFound = (defect: unknown): Option.Option<string> => {
  const message = field(defect, "message")
  const found = typeof message === "string" ? /^Service not found: ?([^(]*?)\s*(\(defined at|$)/.exec(message) : null
  return found === null ? Option.none() : Option.some(found[1] || "(unnamed)")
}

/** A role name as SQL would take it in a GRANT. */
const roleIdentifier = (role: string) => /^[a-z_][a-z0-9_$]*$/.test(role) ? role : `"${role.replaceAll(`"`, `""`)}"`

/**
 * Why a run ended, for a consumer whose tables live in `schema` and that connects as `role`
 * (if known). Pure; never throws.
 */
export const diagnose = (consumerId: string, schema: string, cause: Cause.Cause<unknown>, role?: string): Diagnosis => {
  const error = Option.getOrElse(
    Option.orElse(Cause.failureOption(cause), () => Cause.dieOption(cause)),
    () => undefined as unknown
  )
  if (error instanceof PgWatchError) {
    if (error.reason === "Config" || error.reason === "InvalidChannel") return { _tag: "Fatal", error }
    if (error.reason === "NotMigrated") {
      return { _tag: "Misconfigured", description: error.message, fix: "run `pgwatch migrate`" }
    }
  }
  const service = serviceNotFound(error)
  if (Option.isSome(service)) return { _tag: "Fatal", error: missingServiceError(consumerId, service.value) }
  const db = databaseError(error)
  if (db !== undefined) {
    const { code } = db
    const message = describe(db.message)
    const description = `${message} (SQLSTATE ${code})`
    if (code === "42501") {
      const object = /permission denied for (table|schema|function|sequence) (\S+)/.exec(message)
      const [kind, name] = object === null ? [undefined, undefined] : [object[1], object[2]]
      const grantee = role === undefined ? "the consumer's role" : roleIdentifier(role)
      const fix = kind === "schema"
        ? `grant USAGE on schema ${name} to ${grantee}`
        : kind === "function"
        ? `grant EXECUTE on function ${schema}.${name} to ${grantee}`
        : kind === "table" && consumerPrivileges[name!] !== undefined
        ? `grant ${consumerPrivileges[name!]} on ${schema}.${name} to ${grantee}`
        : `run \`pgwatch grant ${role === undefined ? "<role>" : roleIdentifier(role)} --as consumer\` as the owner of schema ${schema}`
      return { _tag: "Misconfigured", description, fix }
    }
    if (code === "42P01" || code === "42883" || code === "3F000") {
      return { _tag: "Misconfigured", description, fix: `the pgwatch schema ${schema} is missing or out of date: run \`pgwatch migrate\`` }
    }
    // Any other database error: PostgreSQL's own words, not the driver's wrapper.
    return { _tag: "Transient", description }
  }
  return { _tag: "Transient", description: error === undefined && Cause.isInterrupted(cause) ? "interrupted" : describe(error) }
}

/** The delay before restart number `failures` (1 for the first): doubling from `base`, at most `max`. */
export const restartDelay = (failures: number, base: Duration.Duration, max: Duration.Duration): Duration.Duration =>
  Duration.min(Duration.times(base, 2 ** Math.min(Math.max(0, failures - 1), 30)), max)

export interface SuperviseOptions {
  readonly consumerId: string
  readonly schema: string
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
  /** Completes when the consumer is asked to stop: no restart after it. */
  readonly stop: Deferred.Deferred<void>
  /** Failed with the error when the consumer stops for good (then not logged: its owner reports it). */
  readonly fatal?: Deferred.Deferred<void, PgWatchError> | undefined
  /** The database role the consumer runs as, to name in a missing grant's fix. */
  readonly role?: Effect.Effect<string, unknown> | undefined
}

/**
 * Runs `run` until it succeeds (a requested stop), restarting it on any other end, defects
 * included: a `Transient` one after a doubling delay (reset once a run lasted `maxDelay`), one
 * line each; a `Misconfigured` one logged once with its fix and then retried quietly at
 * `maxDelay`; a `Fatal` one stops the consumer. Interrupting the supervisor stops it at once.
 */
export const supervise = <R>(run: Effect.Effect<void, unknown, R>, options: SuperviseOptions): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    const name = `pgwatch: consumer ${options.consumerId}`
    let failures = 0
    let reported: string | undefined
    while (true) {
      const startedAt = yield* Clock.currentTimeMillis
      const exit = yield* Effect.exit(run)
      // (Were this fiber interrupted, it would not get here: `Effect.exit` does not catch that.
      // An interruption seen here came from inside the run, and is restarted like the rest.)
      if (Exit.isSuccess(exit) || (yield* Deferred.isDone(options.stop))) return
      const ranFor = (yield* Clock.currentTimeMillis) - startedAt
      failures = ranFor >= Duration.toMillis(options.maxDelay) ? 1 : failures + 1
      const diagnosis = diagnose(options.consumerId, options.schema, exit.cause)
      yield* Effect.logDebug(`${name} stopped`, exit.cause)
      let delay = restartDelay(failures, options.baseDelay, options.maxDelay)
      switch (diagnosis._tag) {
        case "Fatal":
          // Whoever waits on `fatal` reports it (the CLI exits with it); else it is logged.
          if (options.fatal !== undefined) yield* Deferred.fail(options.fatal, diagnosis.error)
          else yield* Effect.logError(`${name} stopped for good: ${diagnosis.error.message}`)
          return
        case "Misconfigured": {
          delay = options.maxDelay
          if (reported !== diagnosis.description) {
            reported = diagnosis.description
            const role = options.role === undefined
              ? undefined
              : yield* options.role.pipe(Effect.timeout("2 seconds"), Effect.orElseSucceed(() => undefined))
            const named = diagnose(options.consumerId, options.schema, exit.cause, role)
            const fix = named._tag === "Misconfigured" ? named.fix : diagnosis.fix
            yield* Effect.logError(
              `${name} cannot run: ${diagnosis.description}; ${fix}. ` +
                `Retrying every ${Duration.format(delay)} without logging again`
            )
          }
          break
        }
        case "Transient":
          reported = undefined
          yield* Effect.logWarning(
            `${name} stopped on an error (failure ${failures}); restarting in ${Duration.format(delay)}: ${diagnosis.description}`
          )
      }
      yield* Effect.raceFirst(Effect.sleep(delay), Deferred.await(options.stop))
      if (yield* Deferred.isDone(options.stop)) return
    }
  })
