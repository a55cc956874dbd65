import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { type Server, start as startServer } from "@pgwatch/cli/EmbeddedPostgres"
import { Effect, Layer, Redacted, Schedule } from "effect"
import * as NodeFs from "node:fs/promises"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as PgWatch from "../src/PgWatch.js"
import { recordingConsumer, start, takeN, testOptions } from "./utils.js"

// A server of its own (embedded PostgreSQL), so that restarting it disturbs no other test.
describe("server restart", () => {
  it.live("a consumer rides out a server restart: nothing written before or right after is lost", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const dir = await NodeFs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "pgwatch-restart-"))
          await NodeFs.chmod(dir, 0o755) // the server runs as the postgres user when we are root
          return dir
        }),
        (dir) => Effect.promise(() => NodeFs.rm(dir, { recursive: true, force: true }))
      )
      const dataDir = NodePath.join(dir, "data")
      let server: Server = yield* Effect.promise(() => startServer({ dataDir }))
      yield* Effect.addFinalizer(() => Effect.promise(() => server.stop()))
      const port = Number(new URL(server.url).port)
      const layer = PgWatch.layer({ migrate: true, ...testOptions }).pipe(
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(server.url), connectTimeout: "1 second" }))
      )

      yield* Effect.gen(function*() {
        const { consumer, received } = yield* recordingConsumer({ id: "survivor", channels: ["events"] })
        const stop = yield* start(consumer)
        yield* PgWatch.notify("events", "before")
        expect((yield* takeN(received, 1))[0]!.payload).toBe("before")

        yield* Effect.promise(() => server.stop())
        server = yield* Effect.promise(() => startServer({ dataDir, port }))
        // Written as soon as the server is back, likely before the consumer has reconnected.
        yield* PgWatch.notify("events", "right after the restart").pipe(
          Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") })
        )
        // Progress is saved behind the handlers: if the server went down before "before" was
        // recorded, it is handled again (at least once). Nothing else may come first.
        const arrived: Array<unknown> = []
        while (arrived.at(-1) !== "right after the restart") {
          arrived.push((yield* takeN(received, 1, "20 seconds"))[0]!.payload)
        }
        expect(arrived.slice(0, -1).every((payload) => payload === "before")).toBe(true)
        yield* PgWatch.notify("events", "later")
        expect((yield* takeN(received, 1, "20 seconds"))[0]!.payload).toBe("later")
        yield* stop
      }).pipe(Effect.provide(layer))
    }).pipe(Effect.scoped), 60_000)
})
