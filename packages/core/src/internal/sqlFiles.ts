import * as Effect from "effect/Effect"
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { PgWatchError } from "../PgWatchError.js"

/** One numbered file of the top-level `sql/` folder, rendered for a schema. */
export interface SqlFile {
  readonly version: number
  readonly name: string
  readonly text: string
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/
const FIRST_FILE = "0001_log_and_cursors.sql"

/**
 * The `sql/` folder nearest above this module: the repository's own in a checkout, the copy
 * packed into `@pgwatch/core` once installed.
 */
const findSqlDir = Effect.tryPromise({
  try: async () => {
    let dir = NodePath.dirname(fileURLToPath(import.meta.url))
    for (;;) {
      const candidate = NodePath.join(dir, "sql")
      const found = await NodeFs.access(NodePath.join(candidate, FIRST_FILE)).then(() => true, () => false)
      if (found) return candidate
      const parent = NodePath.dirname(dir)
      if (parent === dir) throw new Error(`no sql/${FIRST_FILE} above ${fileURLToPath(import.meta.url)}`)
      dir = parent
    }
  },
  catch: (cause) => new PgWatchError({ reason: "Migration", message: "cannot find pgwatch's sql/ folder", cause })
})

/** Schema names are restricted to plain identifiers so that they can be rendered safely. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** Reads every numbered SQL file, in order, with the schema placeholders filled in. */
export const load = (schema: string): Effect.Effect<ReadonlyArray<SqlFile>, PgWatchError> =>
  Effect.gen(function*() {
    if (!SCHEMA_NAME.test(schema)) {
      return yield* new PgWatchError({
        reason: "Config",
        message: `invalid schema name "${schema}": use lower-case letters, digits and _ (at most 63)`
      })
    }
    const dir = yield* findSqlDir
    return yield* Effect.tryPromise({
      try: async () => {
        const names = (await NodeFs.readdir(dir)).filter((name) => FILE_NAME.test(name)).sort()
        return Promise.all(names.map(async (name) => {
          const [, version, title] = FILE_NAME.exec(name)!
          const text = await NodeFs.readFile(NodePath.join(dir, name), "utf8")
          return { version: Number(version), name: title!, text: render(text, schema) }
        }))
      },
      catch: (cause) => new PgWatchError({ reason: "Migration", message: `cannot read ${dir}`, cause })
    })
  })

const render = (text: string, schema: string) =>
  text.replaceAll(":PGWATCH_SCHEMA_LITERAL", `'${schema}'`).replaceAll(":PGWATCH_SCHEMA", `"${schema}"`)
