import { describe, expect, layer } from "@effect/vitest"
import { Effect, Ref, Schedule } from "effect"
import * as NodeOs from "node:os"
import * as Admin from "../src/Admin.js"
import * as Consumer from "../src/Consumer.js"
import * as PgWatch from "../src/PgWatch.js"
import { freshChannel, recordingConsumer, start, takeN, watchLayer } from "./utils.js"

/** The consumer's status once `ready` holds (status is polled: the rows are what we wait for). */
const statusWhen = (id: string, ready: (status: Admin.ConsumerStatus) => boolean) =>
  Admin.status({ consumerIds: [id] }).pipe(
    Effect.map((rows) => rows[0]!),
    Effect.filterOrFail(ready, () => new Error("not yet")),
    Effect.retry({ schedule: Schedule.spaced("20 millis"), while: (e) => e.message === "not yet" }),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`status of ${id} never got there`) })
  )

describe("what status says about a consumer", () => {
  layer(watchLayer(), { excludeTestServices: true })((it) => {
    it.effect("running in this process, the error and attempt while it retries, stopped after", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const failing = yield* Ref.make(true)
        const { consumer, received } = yield* recordingConsumer({
          id: "state_retrying",
          channels: [channel],
          retry: Schedule.spaced("50 millis"),
          handle: () =>
            Effect.flatMap(Ref.get(failing), (fail) =>
              fail ? Effect.fail(new Consumer.Retryable({ message: "mail server down" })) : Effect.void)
        })
        const stop = yield* start(consumer)
        const running = yield* statusWhen("state_retrying", (s) => s.runningOn?.backendPid != null)
        expect(running.state).toBe("running")
        expect(running.runningOn).toMatchObject({ host: NodeOs.hostname(), pid: process.pid })
        expect(running.runningOn!.since).toBeInstanceOf(Date)
        expect(running.currentError).toBeNull()

        const id = yield* PgWatch.notify(channel, { n: 1 })
        const retrying = yield* statusWhen("state_retrying", (s) => (s.currentError?.attempt ?? 0) >= 2)
        expect(retrying.currentError).toMatchObject({ logId: id, error: "mail server down" })
        expect(retrying.currentError!.since).toBeInstanceOf(Date)
        // Nothing was given up on yet: no last error, no dead letter.
        expect(retrying).toMatchObject({ state: "running", lastError: null, deadLetters: 0, deadLettered: 0 })

        yield* Ref.set(failing, false)
        yield* takeN(received, 1)
        const recovered = yield* statusWhen("state_retrying", (s) => s.currentError === null && s.handled === 1)
        expect(recovered).toMatchObject({ state: "running", deadLettered: 0 })

        yield* stop
        const [stopped] = yield* Admin.status({ consumerIds: ["state_retrying"] })
        expect(stopped).toMatchObject({ state: "stopped", runningOn: null, currentError: null })
      }))

    it.effect("dead letters are counted apart from handled notifications", () =>
      Effect.gen(function*() {
        const channel = freshChannel()
        const { consumer, received } = yield* recordingConsumer({
          id: "state_dead",
          channels: [channel],
          handle: (n) =>
            (n.payload as { bad?: boolean }).bad === true
              ? Effect.fail(new Consumer.Permanent({ message: "no such customer" }))
              : Effect.void
        })
        yield* PgWatch.notifyMany(channel, [{ n: 1 }, { bad: true }, { n: 3 }])
        const stop = yield* start(consumer)
        yield* takeN(received, 2)
        yield* stop
        const [status] = yield* Admin.status({ consumerIds: ["state_dead"] })
        expect(status).toMatchObject({ handled: 2, deadLettered: 1, deadLetters: 1, state: "stopped" })
        expect(status!.lastError).toContain("no such customer")
      }))

    it.effect("a run whose session is gone (a process that died without cleaning up) is unknown, not running", () =>
      Effect.gen(function*() {
        const { consumer } = yield* recordingConsumer({ id: "state_gone", channels: [freshChannel()] })
        const stop = yield* start(consumer)
        yield* statusWhen("state_gone", (s) => s.state === "running")
        // What a killed process leaves: its row still marked, its listen session gone.
        const { settings, sql } = yield* PgWatch.PgWatch
        yield* sql`UPDATE ${sql(settings.schema)}.consumer SET running_backend_pid = 2147483647 WHERE id = 'state_gone'`
        const [gone] = yield* Admin.status({ consumerIds: ["state_gone"] })
        expect(gone).toMatchObject({ state: "unknown", runningOn: { pid: process.pid, backendPid: 2147483647 } })
        yield* stop
      }))
  })
})
