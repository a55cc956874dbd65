import { type ChildProcess, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Pg from "pg"
import { afterAll, inject } from "vitest"

export const databaseUrl = inject("databaseUrl")

/** The command as a user runs it: the package's bin, in a fresh Node process. */
export const BIN = fileURLToPath(new URL("../bin/pgwatch.mjs", import.meta.url))
export const FIXTURES = fileURLToPath(new URL("./fixtures", import.meta.url))
export const PROJECT = NodePath.join(FIXTURES, "project")

/** Schemas named by this test file, dropped after its last test. */
const named = new Set<string>()

/** Each test its own schema, so that files (and tests) run in parallel; dropped after the file. */
export const freshSchema = () => {
  const schema = `cli_${Math.random().toString(36).slice(2, 10)}`
  named.add(schema)
  return schema
}

afterAll(async () => {
  for (const schema of named) await dropSchema(schema)
})

export interface RunOptions {
  readonly cwd?: string | undefined
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  readonly input?: string | undefined
}

export interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of a child: none of the developer's database settings leak in. */
export const childEnv = (env: RunOptions["env"]) => {
  const base: Record<string, string | undefined> = { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" }
  for (const key of Object.keys(base)) {
    if (/^PG|^PGWATCH_|^DATABASE_URL$/.test(key)) delete base[key]
  }
  return { ...base, ...env }
}

/** A running command: its output lines so far, and ways to wait for more. */
export class Running {
  readonly stdout: Array<string> = []
  readonly stderr: Array<string> = []
  readonly exited: Promise<Result>
  private waiters: Array<() => void> = []

  constructor(readonly child: ChildProcess) {
    const collect = (stream: NodeJS.ReadableStream | null, lines: Array<string>) => {
      let rest = ""
      stream?.setEncoding("utf8")
      stream?.on("data", (chunk: string) => {
        const parts = (rest + chunk).split("\n")
        rest = parts.pop()!
        lines.push(...parts)
        this.notify()
      })
      stream?.on("end", () => {
        if (rest !== "") lines.push(rest)
        this.notify()
      })
    }
    collect(child.stdout, this.stdout)
    collect(child.stderr, this.stderr)
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        this.notify()
        resolve({ code, signal, stdout: this.stdout.join("\n"), stderr: this.stderr.join("\n") })
      })
    })
  }

  private notify() {
    const waiters = this.waiters
    this.waiters = []
    waiters.forEach((wake) => wake())
  }

  /** Waits (no sleeping: woken by each output chunk) until `done` holds, or fails after `ms`. */
  async until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!done()) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        await this.exited
        if (done()) return
        throw new Error(`the command exited before ${what}\nstdout:\n${this.stdout.join("\n")}\nstderr:\n${this.stderr.join("\n")}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}\nstdout:\n${this.stdout.join("\n")}\nstderr:\n${this.stderr.join("\n")}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Waits for a line matching the pattern on stdout or stderr; returns it. */
  async line(pattern: RegExp, stream: "stdout" | "stderr" = "stdout", ms?: number): Promise<string> {
    const lines = stream === "stdout" ? this.stdout : this.stderr
    await this.until(() => lines.some((l) => pattern.test(l)), `a line matching ${pattern} on ${stream}`, ms)
    return lines.find((l) => pattern.test(l))!
  }

  /** Stops it with a signal and waits for it to exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<Result> {
    this.child.kill(signal)
    return this.exited
  }
}

/** Starts the command in the background. */
export const start = (args: ReadonlyArray<string>, options: RunOptions = {}): Running => {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? PROJECT,
    env: childEnv(options.env),
    stdio: ["pipe", "pipe", "pipe"]
  })
  child.stdin?.end(options.input ?? "")
  return new Running(child)
}

/** Runs the command to the end. */
export const run = (args: ReadonlyArray<string>, options: RunOptions = {}): Promise<Result> => start(args, options).exited

/** `handled <consumer> <log id> <channel> <replay|live>` lines printed by the fixture consumers. */
export const handled = (lines: ReadonlyArray<string>, consumer?: string) =>
  lines.flatMap((line) => {
    const m = /^handled (\S+) (\d+) (\S+) (replay|live)$/.exec(line)
    return m !== null && (consumer === undefined || m[1] === consumer)
      ? [{ consumer: m[1]!, id: Number(m[2]), channel: m[3]!, replay: m[4] === "replay" }]
      : []
  })

/** A plain client for setting up and checking rows. */
export const withClient = async <A>(f: (client: Pg.Client) => Promise<A>): Promise<A> => {
  const client = new Pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

export const dropSchema = (schema: string) =>
  withClient((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).then(() => undefined)

/** Environment selecting the test database and a schema. */
export const dbEnv = (schema: string) => ({ PGWATCH_DATABASE_URL: databaseUrl, PGWATCH_SCHEMA: schema })

/** A migrated schema of its own. */
export const migratedSchema = async () => {
  const schema = freshSchema()
  const result = await run(["migrate"], { env: dbEnv(schema) })
  if (result.code !== 0) throw new Error(`migrate failed: ${result.stderr}`)
  return schema
}
