#!/usr/bin/env node
// The `pgwatch` command.
//
// Installed from the registry, the package carries its compiled JavaScript (dist/, built by
// `prepack`) and this file runs it.
//
// In a source checkout (this file is not under node_modules) it runs dist/ too when that is
// built from the sources as they are (the root `prepare` script builds it on `npm install`,
// `npm run build` rebuilds it, and records a hash of the sources; see source-hash.mjs):
// compiled JavaScript loads in about half the time of TypeScript through a loader. When the
// sources differ from the last build, it runs the TypeScript sources through tsx instead,
// with @pgwatch/* resolved to their sources, so an edit is never shadowed by a stale build
// and no build step is ever required.
import * as NodeFs from "node:fs"
import * as NodeModule from "node:module"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { builtIsFresh } from "./source-hash.mjs"

// Started by `npx pgwatch` or `npm exec`, pgwatch runs under `sh -c`: on SIGTERM npm passes
// the signal to that shell only, which dies without passing it on, and npm exits; pgwatch
// would be left running, orphaned. So when the process that started us is gone, we stop as if
// we had got SIGTERM (a graceful stop). npm does not wait for that: under a process manager,
// start node_modules/.bin/pgwatch itself (see the README's "Deploying").
// (A Ctrl-C reaches pgwatch itself, with the shell: that stop is already under way.)
if (process.env.npm_command === "exec") {
  const parent = process.ppid
  let signalled = false
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => (signalled = true))
  const watch = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(watch)
    if (signalled) return
    process.stderr.write("pgwatch: npm exec (npx), which started pgwatch, has exited without passing its signal on\n")
    process.kill(process.pid, "SIGTERM")
  }, 200)
  watch.unref()
}

const here = fileURLToPath(import.meta.url)
const sourceEntry = NodePath.resolve(NodePath.dirname(here), "..", "src", "bin.ts")

const checkout = !here.split(NodePath.sep).includes("node_modules") && NodeFs.existsSync(sourceEntry)

// PGWATCH_CLI_SOURCE=1 forces the sources (for testing that path).
if (checkout && (process.env.PGWATCH_CLI_SOURCE === "1" || !builtIsFresh())) {
  NodeModule.register("./source-condition.mjs", import.meta.url)
  const { register } = await import("tsx/esm/api")
  register()
  // Tells src/internal/loader.ts that TypeScript imports already work.
  globalThis[Symbol.for("@pgwatch/cli/tsx-registered")] = true
  await import(new URL("../src/bin.ts", import.meta.url).href)
} else {
  await import(new URL("../dist/bin.js", import.meta.url).href)
}
