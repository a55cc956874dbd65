import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Context, Deferred, Effect, Exit, Layer, Logger, LogLevel, Queue, Redacted, Schema, Scope } from "effect"
import * as Consumer from "../src/Consumer.js"
import * as PgWatch from "../src/PgWatch.js"
import { PgWatchError } from "../src/PgWatchError.js"
import { databaseUrl, freshChannel, recordingConsumer, start, takeN, testOptions, watchLayer } from "./utils.js"

// A notification whose handling throws anywhere is that notification's failure (retried, then
// dead-lettered), never the consumer's death; what a restart cannot fix is said once.

/** Log lines, collected: what an operator would read. */
const captureLogs = Effect.gen(function*() {
  const lines = yield* Queue.unbounded<{ readonly level: string; readonly message: string }>()
  const logger = Logger.make(({ logLevel, message }) => {
    // The first part is the line; a cause logged with it (at debug) is not.
    const text = String(Array.isArray(message) ? message[0] : message)
    Queue.unsafeOffer(lines, { level: logLevel.label, message: text })
  })
  return { lines, layer: Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Debug)) }
})

/** Waits for a log line matching `pattern`; returns every line seen until then. */
const waitForLine = (lines: Queue.Dequeue<{ readonly level: string; readonly message: string }>, pattern: RegExp) =>
  Effect.gen(function*() {
    const seen: Array<{ readonly level: string; readonly message: string }> = []
    while (true) {
      const line = yield* Queue.take(lines)
      seen.push(line)
      if (pattern.test(line.message)) return seen
    }
  }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`no log line matching ${pattern}`) }))

const dropSchemaAfter = Layer.scopedDiscard(Effect.gen(function*() {
  const { settings, sql } = yield* PgWatch.PgWatch
  yield* Effect.addFinalizer(() => sql`DROP SCHEMA IF EXISTS ${sql(settings.schema)} CASCADE`.pipe(Effect.ignore))
}))

const deadLetters = (consumerId: string) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch.PgWatch
    return yield* sql<{ log_id: string; reason: string; error: string }>`
      SELECT log_id::text, reason, error FROM ${sql(settings.schema)}.dead_letter
       WHERE consumer_id = ${consumerId} ORDER BY log_id`
  })

type Tree = number | ReadonlyArray<Tree>
const Tree: Schema.Schema<Tree> = Schema.Union(Schema.Number, Schema.Array(Schema.suspend(() => Tree)))

// Quick retries, so that a failing notification is dead-lettered within the test.
const fastRetries = { baseDelay: "10 millis", maxDelay: "20 millis", maxRetries: 2 } as const

describe("supervision", () => {
  layer(dropSchemaAfter.pipe(Layer.provideMerge(watchLayer({ retry: fastRetries }))), { excludeTestServices: true })((it) => {
    it.effect("a payload whose decoding throws (3000-deep array) is dead-lettered; the next one is handled", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const channel = freshChannel("deep")
        const { consumer, received } = yield* recordingConsumer({ id: "deep", channels: [channel], schema: Tree })
        const stop = yield* start(consumer)
        const [poison] = yield* sql<{ id: string }>`
          SELECT ${sql(settings.schema)}.smart_notify(${channel}, (repeat('[', 3000) || '1' || repeat(']', 3000))::jsonb)::text AS id`
        const next = yield* PgWatch.notify(channel, [1, [2]])
        const [got] = yield* takeN(received, 1)
        expect(got).toMatchObject({ id: next, payload: [1, [2]] })
        yield* stop
        const dead = yield* deadLetters("deep")
        expect(dead).toEqual([expect.objectContaining({ log_id: poison!.id, reason: "retries-exhausted" })])
        expect(dead[0]!.error).toMatch(/^handling threw: RangeError: Maximum call stack size exceeded/)
      }))

    it.effect("a Permanent error whose cause holds a bigint is dead-lettered with it described; the next one is handled", () =>
      Effect.gen(function*() {
        const channel = freshChannel("bigint")
        const { consumer, received } = yield* recordingConsumer<{ readonly poison?: boolean }>({
          id: "bigint",
          channels: [channel],
          handle: (n) =>
            n.payload.poison === true
              ? Effect.fail(new Consumer.Permanent({ message: "refused", cause: { amount: 10n } }))
              : Effect.void
        })
        const stop = yield* start(consumer)
        const poison = yield* PgWatch.notify(channel, { poison: true })
        const next = yield* PgWatch.notify(channel, {})
        const [got] = yield* takeN(received, 1)
        expect(got!.id).toBe(next)
        yield* stop
        expect(yield* deadLetters("bigint")).toEqual([
          { log_id: String(poison), reason: "permanent", error: `refused: {"amount":10n}` }
        ])
      }))

    it.effect("a row created at 'infinity' is handled (with an invalid date) and the lag metric survives it", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const channel = freshChannel("inf")
        const { consumer, received } = yield* recordingConsumer({ id: "infinity", channels: [channel] })
        const stop = yield* start(consumer)
        const odd = yield* sql.withTransaction(Effect.tap(PgWatch.notify(channel, "odd"), (id) =>
          sql`UPDATE ${sql(settings.schema)}.notification_log SET created_at = 'infinity' WHERE id = ${String(id)}::bigint`))
        const [first] = yield* takeN(received, 1)
        expect(first!.id).toBe(odd)
        expect(first!.createdAt).toBeInstanceOf(Date)
        expect(Number.isNaN(first!.createdAt.getTime())).toBe(true)
        const next = yield* PgWatch.notify(channel, "ordinary")
        expect((yield* takeN(received, 1))[0]!.id).toBe(next)
        yield* stop
        expect(yield* deadLetters("infinity")).toEqual([])
      }))

    it.effect("a failed run (the dead-letter write refused once) restarts, in one log line, and carries on", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const schema = sql(settings.schema)
        const logs = yield* captureLogs
        const channel = freshChannel("flaky")
        // The first dead-letter write fails (a sequence counts: it is not rolled back with it):
        // the run ends with a database error.
        yield* sql`CREATE SEQUENCE ${schema}.refusals`
        yield* sql.unsafe(`
          CREATE FUNCTION ${settings.schema}.refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF nextval('${settings.schema}.refusals') = 1 THEN
              RAISE EXCEPTION 'dead letters are refused today';
            END IF;
            RETURN NEW;
          END $$`)
        yield* sql`CREATE TRIGGER refuse_once BEFORE INSERT ON ${schema}.dead_letter
                   FOR EACH ROW WHEN (NEW.consumer_id = 'flaky') EXECUTE FUNCTION ${schema}.refuse_once()`
        const { consumer, received } = yield* recordingConsumer<string>({
          id: "flaky",
          channels: [channel],
          handle: (n) => n.payload === "poison" ? Effect.fail(new Consumer.Permanent({ message: "no" })) : Effect.void
        })
        const stop = yield* start(consumer).pipe(Effect.provide(logs.layer))
        const poison = yield* PgWatch.notify(channel, "poison")
        const next = yield* PgWatch.notify(channel, "next")
        const seen = yield* waitForLine(logs.lines, /consumer flaky stopped on an error/)
        const restart = seen.at(-1)!
        expect(restart.level).toBe("WARN")
        expect(restart.message).toMatch(
          /^pgwatch: consumer flaky stopped on an error \(failure 1\); restarting in \d+ms?: .*dead letters are refused today/
        )
        expect(restart.message).not.toContain("\n")
        expect((yield* takeN(received, 1))[0]!.id).toBe(next)
        yield* stop
        expect(yield* deadLetters("flaky")).toEqual([expect.objectContaining({ log_id: String(poison), reason: "permanent" })])
      }))

    it.effect("a privilege error is reported once, with the missing grant, and retried quietly until granted", () =>
      Effect.gen(function*() {
        const { settings, sql } = yield* PgWatch.PgWatch
        const schema = sql(settings.schema)
        const role = `pgw_consumer_${Math.random().toString(36).slice(2, 10)}`
        const logs = yield* captureLogs
        // With a password, for servers that ask for one (the embedded PostgreSQL does).
        yield* sql.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD '${role}'`)
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${role}`
            yield* sql`DROP OWNED BY ${sql(role)}`
            yield* sql`DROP ROLE ${sql(role)}`
          }).pipe(Effect.orDie)
        )
        yield* sql`GRANT USAGE ON SCHEMA ${schema} TO ${sql(role)}`
        yield* sql`GRANT ALL ON ALL TABLES IN SCHEMA ${schema} TO ${sql(role)}`
        yield* sql`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} TO ${sql(role)}`
        yield* sql`REVOKE INSERT ON ${schema}.dead_letter FROM ${sql(role)}`

        // The consumer runs as that role, on its own connections.
        const url = new URL(databaseUrl)
        url.username = role
        url.password = role
        const asRole = PgWatch.layer({ ...testOptions, schema: settings.schema }).pipe(
          Layer.provide(PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 2 }))
        )
        const scope = yield* Scope.make()
        const roleContext = yield* Layer.buildWithScope(asRole, scope)
        const channel = freshChannel("denied")
        const { consumer, received } = yield* recordingConsumer<string>({
          id: "denied",
          channels: [channel],
          handle: (n) => n.payload === "poison" ? Effect.fail(new Consumer.Permanent({ message: "no" })) : Effect.void
        })
        yield* Layer.buildWithScope(Consumer.layer(consumer), scope).pipe(
          Effect.provide(Layer.merge(Layer.succeedContext(roleContext), logs.layer))
        )
        const poison = yield* PgWatch.notify(channel, "poison")
        const next = yield* PgWatch.notify(channel, "next")

        // Three runs fail on the same missing grant: one ERROR line says so, with the fix.
        const seen: Array<{ readonly level: string; readonly message: string }> = []
        for (let run = 0; run < 3; run++) seen.push(...(yield* waitForLine(logs.lines, /consumer denied stopped$/)))
        const reports = seen.filter((line) => line.level !== "DEBUG" && /consumer denied/.test(line.message))
        expect(reports).toEqual([{
          level: "ERROR",
          message: `pgwatch: consumer denied cannot run: permission denied for table dead_letter (SQLSTATE 42501); ` +
            `grant SELECT, INSERT, UPDATE on ${settings.schema}.dead_letter to ${role}. ` +
            `Retrying every 200ms without logging again`
        }])
        expect(yield* Queue.poll(received)).toMatchObject({ _tag: "None" })

        // Granted: the next restart dead-letters the poison and handles the rest.
        yield* sql`GRANT INSERT ON ${schema}.dead_letter TO ${sql(role)}`
        expect((yield* takeN(received, 1))[0]!.id).toBe(next)
        yield* Scope.close(scope, Exit.void)
        expect(yield* deadLetters("denied")).toEqual([expect.objectContaining({ log_id: String(poison), reason: "permanent" })])
      }).pipe(Effect.scoped))

    it.effect("a handler needing a service nobody provided stops its consumer with a Config error; the notification is kept", () =>
      Effect.gen(function*() {
        class Mailer extends Context.Tag("Mailer")<Mailer, { readonly send: (to: string) => Effect.Effect<void> }>() {}
        const channel = freshChannel("mail")
        const consumer = Consumer.make({
          id: "mailer",
          channels: [channel],
          handle: () => Effect.flatMap(Mailer, (mailer) => mailer.send("someone"))
        })
        const fatal = yield* Deferred.make<void, PgWatchError>()
        // What a dynamically loaded consumer amounts to: the requirement is invisible.
        const untyped = Consumer.layer(consumer, { fatal }) as unknown as Layer.Layer<never, never, PgWatch.PgWatch>
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(untyped, scope)
        yield* PgWatch.notify(channel, "hello")
        const error = yield* Deferred.await(fatal).pipe(Effect.flip)
        expect(error).toMatchObject({ reason: "Config" })
        expect(error.message).toBe(
          `consumer "mailer" needs service Mailer, which is not provided: provide it to Consumer.layer ` +
            "(with the CLI: in the config file's `layer`)"
        )
        yield* Scope.close(scope, Exit.void)
        // Not the notification's fault: it is neither dead-lettered nor passed.
        expect(yield* deadLetters("mailer")).toEqual([])
        const { settings, sql } = yield* PgWatch.PgWatch
        const [row] = yield* sql<{ handled: string }>`
          SELECT handled::text FROM ${sql(settings.schema)}.consumer WHERE id = 'mailer'`
        expect(row!.handled).toBe("0")
      }))

    it.effect("a consumer with a bad channel, no channel, a channel twice, an empty id or a bad concurrency is refused at once", () =>
      Effect.gen(function*() {
        const declare = (options: Partial<Consumer.Options<unknown, unknown, never>>) => () =>
          Consumer.make({ id: "orders", channels: ["orders"], handle: () => Effect.void, ...options })
        expect(declare({ channels: ["bad-name"] })).toThrow(
          `consumer "orders": invalid channel name "bad-name": start with a letter or _, then letters, digits, _ or $ (at most 63)`
        )
        expect(declare({ channels: [] })).toThrow(`consumer "orders": give it at least one channel`)
        expect(declare({ channels: ["a", "a"] })).toThrow(`consumer "orders": channel "a" is listed twice`)
        expect(declare({ id: "" })).toThrow(`consumer "": its id must be 1 to 200 printable characters`)
        expect(declare({ id: " orders" })).toThrow(`consumer " orders": its id must be`)
        expect(declare({ concurrency: 0 })).toThrow(`consumer "orders": concurrency must be a positive whole number, got 0`)
        expect(declare({ concurrency: 1.5 })).toThrow(`got 1.5`)
        try {
          declare({ channels: ["bad-name"] })()
        } catch (error) {
          expect(error).toBeInstanceOf(PgWatchError)
          expect(error).toMatchObject({ reason: "Config" })
        }
        // Changed after make (a spread): the layer's build refuses it, before any work.
        const valid = Consumer.make({ id: "spread", channels: ["orders"], handle: () => Effect.void })
        const exit = yield* Effect.exit(Layer.build(Consumer.layer({ ...valid, channels: ["no good"] })).pipe(Effect.scoped))
        expect(exit).toMatchObject({ _tag: "Failure" })
        const failure = Exit.isFailure(exit) ? exit.cause : undefined
        expect(String(failure)).toContain(`consumer "spread": invalid channel name "no good"`)
      }))
  })
})
