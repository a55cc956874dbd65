import { defineConfig } from "vitest/config"

// Every package's tests run against one real PostgreSQL, chosen once by the global setup.
export default defineConfig({
  resolve: { conditions: ["source"] },
  test: {
    globalSetup: [new URL("./test-support/database.ts", import.meta.url).pathname],
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks"
  }
})
