/**
 * Finding the consumers of a project's apps (the seed's INSTALLED_APPS discovery, in Node's
 * terms), and choosing among them with `--apps`, `--consumers` and `--exclude-consumers`.
 *
 * @since 0.1.0
 */
import * as Consumer from "@pgwatch/core/Consumer"
import * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import { CliError } from "./CliError.js"
import type * as ConfigFile from "./ConfigFile.js"
import { describeImportError } from "./ConfigFile.js"
import * as Loader from "./internal/loader.js"

/**
 * One consumer found in an app's module.
 *
 * @since 0.1.0
 * @category models
 */
export interface Discovered {
  readonly id: string
  readonly app: string
  readonly channels: ReadonlyArray<string>
  /** Where it came from: the module and the export's name. */
  readonly module: string
  readonly exportName: string
  readonly consumer: Consumer.Consumer<any>
}

const importApp = (loaded: ConfigFile.Loaded, app: string, entry: ConfigFile.AppModule) =>
  Effect.tryPromise({
    try: async () => {
      await Loader.ensure()
      if (typeof entry === "function") return (await entry()) as Record<string, unknown>
      const path = NodePath.resolve(NodePath.dirname(loaded.path), entry)
      return (await import(pathToFileURL(path).href)) as Record<string, unknown>
    },
    catch: (cause) =>
      new CliError({
        reason: "AppImport",
        message: `app "${app}": cannot import ${typeof entry === "string" ? entry : "its module"} ` +
          `(from ${loaded.path}): ${describeImportError(cause)}`,
        cause
      })
  })

/**
 * Imports the apps' modules (all, or those named) and collects every consumer they export.
 * Fails when an app is unknown, a module cannot be imported (`Consumer.make` throws on an
 * invalid declaration) or exports no consumer, a consumer is invalid, or two consumers share
 * an id.
 *
 * @since 0.1.0
 * @category discovery
 */
export const discover = (
  loaded: ConfigFile.Loaded,
  options: { readonly apps?: ReadonlyArray<string> | undefined } = {}
): Effect.Effect<ReadonlyArray<Discovered>, CliError> =>
  Effect.gen(function*() {
    const known = Object.keys(loaded.config.apps)
    const wanted = options.apps === undefined || options.apps.length === 0 ? known : options.apps
    yield* unknownNames("app", wanted, known)
    const found: Array<Discovered> = []
    for (const app of wanted) {
      const entry = loaded.config.apps[app]!
      const module = yield* importApp(loaded, app, entry)
      const label = typeof entry === "string" ? entry : `${app} (import function)`
      const seen = new Set<unknown>()
      const before = found.length
      // Named exports first, so a consumer exported twice is reported by its name.
      const entries = Object.entries(module).sort(([a], [b]) => Number(a === "default") - Number(b === "default"))
      for (const [exportName, value] of entries) {
        const values = Array.isArray(value) && value.length > 0 && value.every(Consumer.isConsumer)
          ? value.map((v, i) => [`${exportName}[${i}]`, v] as const)
          : [[exportName, value] as const]
        for (const [name, candidate] of values) {
          if (!Consumer.isConsumer(candidate) || seen.has(candidate)) continue
          seen.add(candidate)
          // Consumer.make checks its options; an object changed after it (a spread) is checked here.
          const valid = Consumer.validate(candidate)
          if (valid._tag === "Left") {
            return yield* new CliError({
              reason: "ConfigInvalid",
              message: `app "${app}" (${label}, export ${name}): ${valid.left.message}`
            })
          }
          found.push({ id: candidate.id, app, channels: candidate.channels, module: label, exportName: name, consumer: candidate })
        }
      }
      if (found.length === before) {
        return yield* new CliError({
          reason: "NoConsumers",
          message: `app "${app}": ${label} exports no consumer (export the values of Consumer.make)`
        })
      }
    }
    const byId = new Map<string, Discovered>()
    for (const d of found) {
      const other = byId.get(d.id)
      if (other !== undefined) {
        return yield* new CliError({
          reason: "DuplicateConsumer",
          message: `consumer id "${d.id}" is declared twice: app "${other.app}" (${other.module}, export ${other.exportName}) ` +
            `and app "${d.app}" (${d.module}, export ${d.exportName}); consumer ids must be unique`
        })
      }
      byId.set(d.id, d)
    }
    return found
  })

const unknownNames = (kind: "app" | "consumer", names: ReadonlyArray<string>, known: ReadonlyArray<string>) => {
  const unknown = names.filter((name) => !known.includes(name))
  if (unknown.length === 0) return Effect.void
  return Effect.fail(
    new CliError({
      reason: "UnknownName",
      message: `unknown ${kind}${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `"${n}"`).join(", ")}; ` +
        (known.length === 0 ? `there are no ${kind}s` : `known ${kind}s: ${known.join(", ")}`)
    })
  )
}

/**
 * Splits repeated and comma-separated option values: `--apps a,b --apps c` is a, b, c.
 *
 * @since 0.1.0
 * @category filters
 */
export const names = (values: ReadonlyArray<string>): ReadonlyArray<string> =>
  values.flatMap((value) => value.split(",")).map((name) => name.trim()).filter((name) => name !== "")

/**
 * Keeps the consumers named (all when none is) minus the excluded ones. Naming a consumer that
 * does not exist is an error listing those that do; so is a selection left empty.
 *
 * @since 0.1.0
 * @category filters
 */
export const select = (
  discovered: ReadonlyArray<Discovered>,
  options: { readonly consumers: ReadonlyArray<string>; readonly exclude: ReadonlyArray<string> }
): Effect.Effect<Arr.NonEmptyReadonlyArray<Discovered>, CliError> =>
  Effect.gen(function*() {
    const known = discovered.map((d) => d.id)
    yield* unknownNames("consumer", options.consumers, known)
    yield* unknownNames("consumer", options.exclude, known)
    const chosen = discovered.filter((d) =>
      (options.consumers.length === 0 || options.consumers.includes(d.id)) && !options.exclude.includes(d.id)
    )
    if (!Arr.isNonEmptyReadonlyArray(chosen)) {
      return yield* new CliError({ reason: "NoConsumers", message: "no consumer left to run after --consumers/--exclude-consumers" })
    }
    return chosen
  })
