// Whether dist/ was built from the sources as they are now, by content (mtimes lie: an
// editor's touch or a checkout changes them, and tsc does not rewrite unchanged outputs).
// `node bin/source-hash.mjs --write` records the hash after a build (the root `build` script).
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const packageDir = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")
const stampFile = NodePath.join(packageDir, "dist", "source-hash.txt")

const files = (dir) =>
  NodeFs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = NodePath.join(dir, entry.name)
    return entry.isDirectory() ? files(path) : [path]
  })

/** A hash of the cli's and (in a checkout) core's sources. */
export const sourceHash = () => {
  const hash = NodeCrypto.createHash("sha256")
  for (const dir of [packageDir, NodePath.resolve(packageDir, "..", "core")]) {
    const src = NodePath.join(dir, "src")
    if (!NodeFs.existsSync(src)) continue
    for (const file of files(src).sort()) {
      hash.update(NodePath.relative(dir, file)).update("\0").update(NodeFs.readFileSync(file)).update("\0")
    }
  }
  return hash.digest("hex")
}

export const builtIsFresh = () =>
  NodeFs.existsSync(NodePath.join(packageDir, "dist", "bin.js")) && NodeFs.existsSync(stampFile) &&
  NodeFs.readFileSync(stampFile, "utf8").trim() === sourceHash()

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes("--write")) {
  NodeFs.mkdirSync(NodePath.dirname(stampFile), { recursive: true })
  NodeFs.writeFileSync(stampFile, `${sourceHash()}\n`)
}
