import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

/** Debian's PgBouncer, if installed (`.ci/run` installs it); else why the tests are skipped. */
export const pgbouncerBinary: string | undefined = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
  .find((path) => NodeFs.existsSync(path))

export const skipReason = "pgbouncer is not installed (apt-get install -y pgbouncer; .ci/run installs it): PgBouncer tests skipped"

/** PgBouncer refuses to run as root: then it runs as the postgres user. */
const runAs = process.getuid?.() === 0 ? ["-u", "postgres"] : []

const freePort = () =>
  Effect.async<number>((resume) => {
    const server = NodeNet.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as NodeNet.AddressInfo).port
      server.close(() => resume(Effect.succeed(port)))
    })
  })

export interface PgBouncer {
  /** The same database as `databaseUrl`, through the pooler. */
  readonly url: string
}

/**
 * A PgBouncer in front of the test database, in the given pool mode, on a free port, with a
 * generated ini in a temp folder; stopped and removed with the scope.
 */
export const startPgBouncer = (databaseUrl: string, mode: "session" | "transaction") =>
  Effect.gen(function*() {
    const target = new URL(databaseUrl)
    const user = decodeURIComponent(target.username || "postgres")
    const password = decodeURIComponent(target.password)
    const database = target.pathname.slice(1)
    const port = yield* freePort()
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-pgbouncer-"))
        NodeFs.chmodSync(dir, 0o777) // written by the postgres user when we are root
        return dir
      }),
      (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
    )
    const ini = NodePath.join(dir, "pgbouncer.ini")
    const server = [`host=${target.hostname}`, `port=${target.port || 5432}`, `user=${user}`]
      .concat(password === "" ? [] : [`password=${password}`])
    NodeFs.writeFileSync(NodePath.join(dir, "users.txt"), `"${user}" ""\n`, { mode: 0o644 })
    NodeFs.writeFileSync(
      ini,
      [
        "[databases]",
        `${database} = ${server.join(" ")}`,
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${port}`,
        "unix_socket_dir =",
        "auth_type = trust",
        `auth_file = ${NodePath.join(dir, "users.txt")}`,
        `pool_mode = ${mode}`,
        "default_pool_size = 20",
        "max_client_conn = 200",
        "ignore_startup_parameters = extra_float_digits,options",
        `pidfile = ${NodePath.join(dir, "pgbouncer.pid")}`
      ].join("\n") + "\n",
      { mode: 0o644 }
    )
    yield* Effect.acquireRelease(
      Effect.async<ChildProcess, Error>((resume) => {
        const child = spawn(pgbouncerBinary!, [...runAs, ini], { stdio: ["ignore", "pipe", "pipe"] })
        let output = ""
        const onData = (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes("process up")) resume(Effect.succeed(child))
        }
        child.stdout!.on("data", onData)
        child.stderr!.on("data", onData)
        child.on("exit", (code) => resume(Effect.fail(new Error(`pgbouncer exited (${code}): ${output}`))))
      }),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.on("exit", () => resume(Effect.void))
          child.kill("SIGINT") // PgBouncer's immediate shutdown
        })
    )
    const auth = encodeURIComponent(user) + (password === "" ? "" : `:${encodeURIComponent(password)}`)
    return { url: `postgres://${auth}@127.0.0.1:${port}/${database}` } satisfies PgBouncer
  })
