import * as SqlClient from "@effect/sql/SqlClient"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Consumer, RunOptions } from "../Consumer.js"
import { retrySchedule } from "../Consumer.js"
import { PgWatch } from "../PgWatch.js"
import * as Subscription from "../Subscription.js"
import * as Committer from "./committer.js"
import * as ConsumerState from "./consumerState.js"
import * as HandledPrefix from "./handledPrefix.js"
import * as Handling from "./handling.js"
import { escapeControls } from "./logText.js"

/** Records a notification the consumer gave up on, before its position moves past it. */
const recordDeadLetter = (
  consumerId: string,
  delivery: Subscription.Delivery,
  outcome: Extract<Handling.Outcome, { readonly _tag: "DeadLettered" }>
) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const schema = sql(settings.schema)
    // A schema's parse error is a tree over several lines; a log line is one line.
    yield* Effect.logWarning(
      `pgwatch: ${consumerId} dead-lettered notification ${delivery.id} (${outcome.reason}): ${
        escapeControls(outcome.error.replace(/\s*\n\s*/g, " "))
      }`
    )
    yield* sql.withTransaction(Effect.zipRight(
      sql`INSERT INTO ${schema}.dead_letter (consumer_id, log_id, reason, error, attempts)
          VALUES (${consumerId}, ${String(delivery.id)}::bigint, ${outcome.reason}, ${outcome.error}, ${outcome.attempts})
          ON CONFLICT (consumer_id, log_id) DO UPDATE
          SET reason = excluded.reason, error = excluded.error,
              attempts = ${schema}.dead_letter.attempts + excluded.attempts, failed_at = now()`,
      sql`UPDATE ${schema}.consumer SET last_error = ${outcome.error}, dead_lettered = dead_lettered + 1 WHERE id = ${consumerId}`
    ))
  }).pipe(Effect.provideServiceEffect(SqlClient.SqlClient, Effect.map(PgWatch, (w) => w.sql)))

/**
 * The consumer's run: its notification stream, up to `concurrency` handlers at once (with
 * retries and dead letters), each notification recorded as handled as soon as it and every
 * one before it are, and saved behind the handlers, until `stop`. Stopping takes no new page
 * and starts no new handler; handlers under way finish, and progress is saved.
 */
export const runUntil = <R>(
  consumer: Consumer<R>,
  stop: Deferred.Deferred<void>,
  options: RunOptions & { readonly subscribed?: Deferred.Deferred<void> | undefined } = {}
) =>
  Effect.gen(function*() {
    const { settings, sql } = yield* PgWatch
    const handle = Handling.processor(consumer, retrySchedule(settings.retry), yield* ConsumerState.running(consumer))
    const committer = yield* Committer.make(settings.schema, consumer.id, settings.commitInterval).pipe(
      Effect.provideService(SqlClient.SqlClient, sql)
    )
    // Whether stop was asked for; read as each handler is about to start (a plain flag, not an
    // effect, since it is read once per notification).
    let stopping = false
    yield* Effect.forkScoped(Effect.andThen(Deferred.await(stop), () => {
      stopping = true
    }))

    const handlePage = (chunk: Chunk.Chunk<Subscription.Delivery>) => {
      const page = Chunk.toReadonlyArray(chunk)
      const prefix = HandledPrefix.make(page.length)
      let recorded = 0
      const completed = (index: number) => {
        const handled = prefix.complete(index)
        for (; recorded < handled; recorded++) committer.record(page[recorded]!)
      }
      return Effect.forEach(
        page,
        (delivery, index) =>
          Effect.suspend(() =>
            stopping ? Effect.void : Effect.flatMap(handle(delivery), (outcome) => {
              if (outcome._tag === "Handled") return Effect.sync(() => completed(index))
              return Effect.zipRight(recordDeadLetter(consumer.id, delivery, outcome), Effect.sync(() => completed(index)))
            })
          ),
        { concurrency: consumer.concurrency, discard: true }
      ).pipe(
        Effect.zipRight(Option.match(Chunk.last(chunk), {
          onNone: () => Effect.void,
          onSome: (newest) => Handling.recordLag(consumer.id, newest)
        }))
      )
    }

    const consume = Subscription.stream({
      consumerId: consumer.id,
      channels: consumer.channels,
      startFrom: consumer.startFrom,
      confidential: consumer.confidential,
      skipPlayback: options.skipPlayback,
      pageSize: options.pageSize,
      subscribed: options.subscribed
    }).pipe(
      // Ends a wait for the next page; a page being handled ends between notifications.
      Stream.interruptWhenDeferred(stop),
      Stream.mapChunksEffect((deliveries) => Effect.as(handlePage(deliveries), Chunk.empty<never>())),
      Stream.runDrain
    )
    yield* Effect.raceFirst(consume, committer.failure).pipe(
      // Failing or cut short (the shutdown time-out), what was handled is still saved.
      Effect.onError(() =>
        committer.flush.pipe(Effect.interruptible, Effect.timeout(settings.shutdownTimeout), Effect.ignoreLogged)
      )
    )
    yield* committer.flush
  }).pipe(Effect.scoped)
