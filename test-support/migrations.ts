// The migrations in sql/, by name ("0001_log_and_cursors", ...), in order: tests that print or
// count them read this, so adding a migration changes no test.
import * as NodeFs from "node:fs"

export const migrationNames: ReadonlyArray<string> = NodeFs.readdirSync(new URL("../sql/", import.meta.url))
  .filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name))
  .sort()
  .map((name) => name.slice(0, -".sql".length))
