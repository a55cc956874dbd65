import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  // Each test starts the real command several times (about a second of start-up each).
  defineProject({ test: { name: "cli", testTimeout: 120_000, globalSetup: [new URL("./test/build.ts", import.meta.url).pathname] } })
)
