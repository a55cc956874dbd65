import { afterAll, describe, expect, it } from "@effect/vitest"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { databaseUrl, dbEnv, dropSchema, migratedSchema, run, withClient } from "./utils.js"

const suffix = () => Math.random().toString(36).slice(2, 10)

/** A connection URL to the test database as another role. */
const urlAs = (role: string, password: string) => {
  const url = new URL(databaseUrl)
  url.username = role
  url.password = password
  return url.toString()
}

const dropRoles = (names: ReadonlyArray<string>) =>
  withClient(async (client) => {
    for (const name of names) {
      const found = await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])
      if (found.rowCount === 0) continue
      await client.query(`REASSIGN OWNED BY "${name}" TO CURRENT_USER; DROP OWNED BY "${name}"; DROP ROLE "${name}"`)
    }
  })

describe.concurrent("privileges", () => {
  const schemas: Array<string> = []
  const roles: Array<string> = []
  const dirs: Array<string> = []
  afterAll(async () => {
    await Promise.all(schemas.map(dropSchema))
    await dropRoles([...roles, ...schemas.flatMap((s) => ["producer", "consumer", "operator"].map((k) => `${s}_${k}`))])
    for (const dir of dirs) NodeFs.rmSync(dir, { recursive: true, force: true })
  })

  it("never prints the password of a connection URL or of the config file", async () => {
    const secret = `pw${suffix()}`
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pgwatch-secret-"))
    dirs.push(dir)
    const url = `postgres://nobody_${suffix()}:${secret}@127.0.0.1:5432/test`
    const configs = [
      `{ apps: {}, database: { url: ${JSON.stringify(url)}, port: "5432" } }`,
      `{ apps: {}, database: { url: "postgres://127.0.0.1/test", user: "x", password: 1${secret.length}${secret.length}1 } }`,
      `{ apps: {}, database: ${JSON.stringify(`${url}?password=${secret}`)}, extra: true }`,
      // A password with a space: only parsing the URL finds where it ends.
      `{ apps: {}, database: { listenUrl: ${JSON.stringify(`postgres://app:my ${secret}@127.0.0.1/test`)}, port: "5432" } }`
    ]
    const printed: Array<string> = []
    for (const config of configs) {
      NodeFs.writeFileSync(NodePath.join(dir, "pgwatch.config.mjs"), `export default ${config}\n`)
      const result = await run(["status"], { cwd: dir })
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(/^pgwatch: config file .* is invalid: /)
      expect(result.stderr).not.toContain(secret)
      expect(result.stderr).not.toContain(`1${secret.length}${secret.length}1`)
      printed.push(result.stderr)
    }
    // The rejected value is still shown, with the password masked.
    expect(printed[0]).toContain(`${url.split(":").slice(0, 2).join(":")}:***@127.0.0.1`)

    // Connection errors: a role that does not exist, a malformed URL.
    NodeFs.rmSync(NodePath.join(dir, "pgwatch.config.mjs"))
    for (const bad of [url, `postgres://nobody:${secret}@[bad/test`, `postgres://nobody@127.0.0.1:5432/test?password=${secret}&sslmode=x`]) {
      const result = await run(["status", "--database-url", bad], { cwd: dir })
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(/^pgwatch: cannot connect to PostgreSQL at /)
      expect(result.stderr).not.toContain(secret)
    }
  })

  it("grant: a login role gets a kind's privileges; the app's role may then run migrate and status", async () => {
    const schema = await migratedSchema()
    schemas.push(schema)
    const role = `pgw_app_${suffix()}`
    const password = suffix()
    roles.push(role)
    await withClient((client) => client.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}'`))
    const asApp = { PGWATCH_DATABASE_URL: urlAs(role, password), PGWATCH_SCHEMA: schema }

    const before = await run(["status"], { env: asApp })
    expect(before.code).toBe(1)
    expect(before.stderr).toContain(`pgwatch grant ${role} --as consumer`)

    const dryRun = await run(["grant", role, "--as", "consumer", "--dry-run"], { env: dbEnv(schema) })
    expect(dryRun.code, dryRun.stderr).toBe(0)
    expect(dryRun.stdout).toContain(`CREATE ROLE "${schema}_consumer" NOLOGIN;`)
    expect(dryRun.stdout).toContain(`GRANT EXECUTE ON FUNCTION "${schema}".next_page TO "${schema}_consumer";`)
    expect(dryRun.stdout).toContain(`GRANT "${schema}_consumer" TO "${role}";`)

    const granted = await run(["grant", role, "--as", "consumer"], { env: dbEnv(schema) })
    expect(granted.code, granted.stderr).toBe(0)
    expect(granted.stdout).toContain(`${role} is a member of ${schema}_consumer (created): consumer privileges on schema ${schema}`)

    const migrate = await run(["migrate"], { env: asApp })
    expect(migrate.code, migrate.stderr).toBe(0)
    expect(migrate.stdout).toContain(`schema ${schema} is up to date`)
    const status = await run(["status"], { env: asApp })
    expect(status.code, status.stderr).toBe(0)

    const notMine = await run(["grant", role, "--as", "operator"], { env: asApp })
    expect(notMine.code).toBe(1)
    expect(notMine.stderr).toMatch(/^pgwatch: (creating role|only the owner)/)
    const bad = await run(["grant", role, "--as", "admin"], { env: dbEnv(schema) })
    expect(bad.code).toBe(2)
  })
})
