/**
 * Where the embedded PostgreSQL's files live, and as whom it runs.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user
 * (created when missing). That user must reach the binaries, the data directory and the
 * password file given to initdb; a project in a private directory (root's home, `mktemp -d`)
 * is out of its reach. Then what it needs is kept in a stage directory, /var/tmp/pgwatch-0:
 * owned by root, group postgres, mode 750; its binaries hard-linked (or copied) there once per
 * package version; data directories owned by postgres, mode 700.
 */
import * as Data from "effect/Data"
import { execFile } from "node:child_process"
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"

/** The system user the server runs as when we are root. */
export interface ServerUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

/** A one-line problem with the embedded server that says what to do. */
export class EmbeddedError extends Data.TaggedError("EmbeddedError")<{ readonly message: string }> {}

interface Outcome {
  readonly ok: boolean
  readonly stdout: string
  readonly stderr: string
  readonly missing: boolean
}

/** Runs a program (as `user` if given) and reports how it ended; never throws. */
export const runProgram = (file: string, args: ReadonlyArray<string>, user?: ServerUser) =>
  new Promise<Outcome>((resolve) => {
    execFile(file, args, { ...(user ? { uid: user.uid, gid: user.gid, cwd: "/" } : {}), encoding: "utf8" }, (error, stdout, stderr) =>
      resolve({
        ok: error === null,
        stdout,
        stderr,
        missing: (error as NodeJS.ErrnoException | null)?.code === "ENOENT"
      }))
  })

const firstLine = (text: string) => text.trim().split("\n")[0] ?? ""

const idsOf = async (name: string): Promise<ServerUser | undefined> => {
  const [uid, gid] = await Promise.all([runProgram("id", ["-u", name]), runProgram("id", ["-g", name])])
  return uid.ok && gid.ok ? { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) } : undefined
}

/**
 * The user to run the server as: none (ourselves) unless we are root; as root the `name`
 * user, created as a system user if missing.
 */
export const serverUser = async (name: string): Promise<ServerUser | undefined> => {
  if (process.getuid?.() !== 0) return undefined
  const existing = await idsOf(name)
  if (existing) return existing
  const created = await runProgram("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
  const why = created.missing ? "useradd is not installed" : firstLine(created.stderr)
  const ids = created.ok ? await idsOf(name) : undefined
  if (ids) return ids
  throw new EmbeddedError({
    message:
      `PostgreSQL cannot run as root, and there is no "${name}" user to run it as (creating one failed: ${why}): ` +
      "set DATABASE_URL to a PostgreSQL server, or run as a user other than root"
  })
}

/** Whether `user` passes `test <args>` (e.g. `-x dir`): path search and mode bits, as the kernel checks them. */
export const userPasses = async (user: ServerUser, args: ReadonlyArray<string>) => (await runProgram("test", args, user)).ok

/** The nearest existing directory at or above `path`. */
const existingAncestor = async (path: string): Promise<string> => {
  let dir = NodePath.resolve(path)
  while (!(await NodeFs.stat(dir).then((s) => s.isDirectory(), () => false))) dir = NodePath.dirname(dir)
  return dir
}

/**
 * Whether `user` could use a data directory at `dataDir`: an initialised one must be its own and
 * within its reach; for a new (or empty) one, which we create and hand over, it must reach the parent.
 */
export const canHoldData = async (user: ServerUser, dataDir: string) => {
  const initialised = await NodeFs.stat(NodePath.join(dataDir, "PG_VERSION")).then(() => true, () => false)
  return initialised
    ? userPasses(user, ["-O", dataDir, "-a", "-w", dataDir, "-a", "-x", dataDir])
    : userPasses(user, ["-x", await existingAncestor(NodePath.dirname(NodePath.resolve(dataDir)))])
}

/** Creates `dir` and its missing parents, each searchable by others (mode 755), whatever the umask. */
export const makeDirectories = async (dir: string) => {
  const missing: Array<string> = []
  for (let d = NodePath.resolve(dir); !(await NodeFs.stat(d).then(() => true, () => false)); d = NodePath.dirname(d)) {
    missing.unshift(d)
  }
  for (const d of missing) {
    await NodeFs.mkdir(d).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error
    })
    await NodeFs.chmod(d, 0o755)
  }
}

/** Creates (or checks) a directory of the stage: ours, group `user`, mode 750, nobody else may write. */
const stageDirectory = async (dir: string, user: ServerUser) => {
  await NodeFs.mkdir(dir, { mode: 0o750 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error
  })
  const stat = await NodeFs.lstat(dir)
  if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) {
    throw new EmbeddedError({
      message:
        `${dir} is not a directory that only root may change: remove it (it holds only the embedded PostgreSQL's files), ` +
        "or set DATABASE_URL to a PostgreSQL server"
    })
  }
  await NodeFs.chown(dir, stat.uid, user.gid)
  await NodeFs.chmod(dir, 0o750)
  return dir
}

/** The stage directory for files the server user must reach (/var/tmp/pgwatch-<our uid>). */
export const stageRoot = async (user: ServerUser) => {
  const base = await NodeFs.stat("/var/tmp").then(() => "/var/tmp", () => "/tmp")
  return stageDirectory(NodePath.join(base, `pgwatch-${process.getuid?.() ?? 0}`), user)
}

/** Copies the tree at `from` to `to`: hard links where possible, copies otherwise; symbolic links kept. */
const linkTree = async (from: string, to: string) => {
  await NodeFs.mkdir(to, { mode: 0o755 })
  for (const entry of await NodeFs.readdir(from, { withFileTypes: true })) {
    const source = NodePath.join(from, entry.name)
    const target = NodePath.join(to, entry.name)
    if (entry.isDirectory()) await linkTree(source, target)
    else if (entry.isSymbolicLink()) await NodeFs.symlink(await NodeFs.readlink(source), target)
    else await NodeFs.link(source, target).catch(() => NodeFs.copyFile(source, target))
  }
}

/**
 * The PostgreSQL installation at `native` staged under `root/bin/<key>`, made once and reused
 * (PostgreSQL finds its libraries and share/ relative to its binary's real path, so a symbolic
 * link would lead back into the private directory). Staged atomically: a half-made copy is
 * never used.
 */
export const stageBinaries = async (native: string, key: string, root: string, user: ServerUser) => {
  const bin = await stageDirectory(NodePath.join(root, "bin"), user)
  const staged = NodePath.join(bin, key)
  if (await NodeFs.stat(staged).then(() => true, () => false)) return staged
  const scratch = NodePath.join(bin, `.${key}-${NodeCrypto.randomBytes(4).toString("hex")}`)
  try {
    await linkTree(native, scratch)
    await NodeFs.rename(scratch, staged).catch(async (error: NodeJS.ErrnoException) => {
      // Another process staged it first.
      if (!(await NodeFs.stat(staged).then(() => true, () => false))) throw error
    })
  } finally {
    await NodeFs.rm(scratch, { recursive: true, force: true })
  }
  return staged
}

/** Where the server user keeps the data it cannot keep at `requested`: one folder per requested path. */
export const relocatedData = async (root: string, requested: string, user: ServerUser) => {
  const data = await stageDirectory(NodePath.join(root, "data"), user)
  const key = NodeCrypto.createHash("sha256").update(NodePath.resolve(requested)).digest("hex").slice(0, 16)
  return NodePath.join(data, key)
}
