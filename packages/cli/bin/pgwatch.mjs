#!/usr/bin/env node
// The `pgwatch` command.
//
// Installed from the registry, the package carries its compiled JavaScript (dist/, built by
// `prepack`) and this file runs it. In a source checkout (this file is not under node_modules)
// there is no build step: the TypeScript sources run through tsx, with @pgwatch/* packages
// resolved to their sources. Either way tsx is also what loads a user's pgwatch.config.ts.
import * as NodeFs from "node:fs"
import * as NodeModule from "node:module"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(import.meta.url)
const sourceEntry = new URL("../src/bin.ts", import.meta.url)
const builtEntry = new URL("../dist/bin.js", import.meta.url)
const checkout = !here.split(/[\\/]/).includes("node_modules") && NodeFs.existsSync(sourceEntry)

if (checkout) {
  NodeModule.register("./source-condition.mjs", import.meta.url)
  const { register } = await import("tsx/esm/api")
  register()
  // Tells src/internal/loader.ts that TypeScript imports already work.
  globalThis[Symbol.for("@pgwatch/cli/tsx-registered")] = true
  await import(sourceEntry.href)
} else {
  await import(builtEntry.href)
}
