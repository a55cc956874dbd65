/**
 * Vitest global setup for the cli tests: brings dist/ up to date (`npm run build`: an
 * incremental `tsc -b`, a few seconds at most) so that the many commands the tests start load
 * compiled JavaScript, as an installed pgwatch does. Should the build fail, the bin runs the
 * sources through tsx instead.
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export default function setup() {
  const root = fileURLToPath(new URL("../../..", import.meta.url))
  try {
    execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" })
  } catch {
    console.warn("cli tests: the build failed; the command runs from its TypeScript sources")
  }
}
