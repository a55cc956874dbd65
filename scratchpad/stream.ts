/**
 * The notification stream on its own (README "Building on the stream"): `npx tsx
 * --conditions=source scratchpad/stream.ts`. Prints what arrives on `orders` and commits in
 * groups; stop it with Ctrl-C, run it again, and it resumes after the last commit.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgWatch, Subscription } from "@pgwatch/core"
import { Console, Effect, Layer, Stream } from "effect"
import { DatabaseLive } from "./database.js"

const program = Effect.gen(function*() {
  yield* PgWatch.notifyMany("orders", [{ total: 10 }, { total: 25 }])
  yield* Subscription.stream({ consumerId: "order_printer", channels: ["orders"] }).pipe(
    Stream.tap((n) => Console.log(`#${n.id} ${JSON.stringify(n.payload)}${n.isReplay ? " (replay)" : ""}`)),
    Stream.groupedWithin(100, "1 second"),
    Stream.mapEffect((handled) => Subscription.commit("order_printer", handled)),
    Stream.runDrain
  )
})

program.pipe(
  Effect.provide(PgWatch.layer({ migrate: true }).pipe(Layer.provideMerge(DatabaseLive))),
  NodeRuntime.runMain
)
