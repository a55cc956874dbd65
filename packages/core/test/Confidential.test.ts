import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as PgWatch from "../src/PgWatch.js"

// Which channels keep payloads out of NOTIFYs: the consumer's choice, else the service's.
describe("confidential channels", () => {
  it.effect("the service default: none, a list, or all; a consumer's own choice wins", () =>
    Effect.gen(function*() {
      const none = yield* PgWatch.resolve({})
      expect(PgWatch.isConfidential(none, "orders", undefined)).toBe(false)
      expect(PgWatch.isConfidential(none, "orders", true)).toBe(true)
      const some = yield* PgWatch.resolve({ confidentialChannels: ["payroll"] })
      expect(PgWatch.isConfidential(some, "payroll", undefined)).toBe(true)
      expect(PgWatch.isConfidential(some, "orders", undefined)).toBe(false)
      expect(PgWatch.isConfidential(some, "payroll", false)).toBe(false)
      const all = yield* PgWatch.resolve({ confidentialChannels: "all" })
      expect(PgWatch.isConfidential(all, "orders", undefined)).toBe(true)
      const bad = yield* Effect.flip(PgWatch.resolve({ confidentialChannels: ["payroll", "pay roll"] }))
      expect(bad.message).toContain(`confidential channels: "pay roll" is not a channel name`)
    }))

  it.effect("PGWATCH_CONFIDENTIAL_CHANNELS: comma-separated, or all", () =>
    Effect.gen(function*() {
      const read = (value: string) =>
        Effect.withConfigProvider(PgWatch.config, ConfigProvider.fromMap(new Map([["PGWATCH_CONFIDENTIAL_CHANNELS", value]])))
      expect((yield* read("payroll, hr")).confidentialChannels).toEqual(["payroll", "hr"])
      expect((yield* read("all")).confidentialChannels).toBe("all")
      expect((yield* Effect.withConfigProvider(PgWatch.config, ConfigProvider.fromMap(new Map()))).confidentialChannels)
        .toEqual([])
    }))
})
