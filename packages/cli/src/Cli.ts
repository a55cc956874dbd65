/**
 * The `pgwatch` command line: every command, its options, and its help with examples.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as Admin from "@pgwatch/core/Admin"
import * as Channel from "@pgwatch/core/Channel"
import * as Json from "@pgwatch/core/Json"
import * as Migrator from "@pgwatch/core/Migrator"
import * as PgWatch from "@pgwatch/core/PgWatch"
import * as Retention from "@pgwatch/core/Retention"
import * as Triggers from "@pgwatch/core/Triggers"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { CliError } from "./CliError.js"
import * as Grant from "./commands/grant.js"
import { setup, shared, targetFor, typedSchema, withWatch } from "./commands/shared.js"
import * as ConfigFile from "./ConfigFile.js"
import * as Database from "./Database.js"
import * as Demo from "./Demo.js"
import * as Discovery from "./Discovery.js"
import * as Output from "./internal/output.js"
import * as Since from "./internal/since.js"
import * as Listen from "./Listen.js"

// ---------------------------------------------------------------------------------------------
// Help

const help = (text: string, examples: ReadonlyArray<readonly [command: string, explanation: string]>) =>
  HelpDoc.blocks([
    HelpDoc.p(text),
    HelpDoc.h2("EXAMPLES"),
    ...examples.flatMap(([command, explanation]) => [
      HelpDoc.p(Span.weak(`# ${explanation}`)),
      HelpDoc.p(Span.code(`$ ${command}`))
    ])
  ])

const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table."))

// Values checked where they are parsed: a bad one is a usage error (exit 2), printed by
// @effect/cli with the option's name.
const positiveInt = (flag: string) =>
  Schema.Int.pipe(Schema.positive({ message: (issue) => `--${flag} must be a whole number above 0, got ${String(issue.actual)}` }))
const nonNegativeInt = (flag: string) =>
  Schema.Int.pipe(Schema.nonNegative({ message: (issue) => `--${flag} must be a whole number, 0 or more, got ${String(issue.actual)}` }))
const positiveSeconds = (flag: string) => {
  const message = (issue: { readonly actual: unknown }) => `--${flag} must be a number of seconds above 0, got ${String(issue.actual)}`
  return Schema.Number.pipe(Schema.finite({ message }), Schema.positive({ message }))
}

/** A flag of seconds (`--timeout 2.5`), checked, as a duration. */
const secondsOption = (name: string, description: string) =>
  Options.float(name).pipe(
    Options.withDescription(description),
    Options.withSchema(positiveSeconds(name)),
    Options.map((seconds) => Duration.millis(Math.round(seconds * 1000))),
    Options.optional
  )

const parseLogIds = (text: string) =>
  Effect.gen(function*() {
    const parts = Discovery.names([text])
    const bad = parts.filter((p) => !/^[1-9][0-9]{0,18}$/.test(p))
    if (parts.length === 0 || bad.length > 0) {
      return yield* new CliError({
        reason: "InvalidInput",
        message: `invalid log id${bad.length > 1 ? "s" : ""} ${bad.map((b) => JSON.stringify(b)).join(", ") || "(none)"}: ` +
          "give positive integers, comma-separated (--ids 12,15)"
      })
    }
    return parts.map(BigInt)
  })

// ---------------------------------------------------------------------------------------------
// listen

const listen = Command.make(
  "listen",
  {
    ...shared,
    apps: Options.text("apps").pipe(
      Options.withDescription("Run only these apps' consumers (repeat the option or separate with commas)."),
      Options.repeated
    ),
    consumers: Options.text("consumers").pipe(
      Options.withDescription("Run only these consumers, by id (repeat or comma-separate)."),
      Options.repeated
    ),
    excludeConsumers: Options.text("exclude-consumers").pipe(
      Options.withDescription("Do not run these consumers (repeat or comma-separate)."),
      Options.repeated
    ),
    listConsumers: Options.boolean("list-consumers").pipe(
      Options.withDescription("List the consumers found (after the filters) and exit; nothing connects to the database.")
    ),
    json: jsonOption,
    timeout: secondsOption(
      "timeout",
      "Seconds a caught-up consumer waits for a wake-up before it looks at the log (and the redelivery queue) anyway. " +
        "Default: PGWATCH_POLL_INTERVAL, else 5."
    ),
    maxBatchSize: Options.integer("max-batch-size").pipe(
      Options.withDescription("Notifications read per query during playback. Default: PGWATCH_PAGE_SIZE, else 1000."),
      Options.withSchema(positiveInt("max-batch-size")),
      Options.optional
    ),
    skipPlayback: Options.boolean("skip-playback").pipe(
      Options.withDescription("Drop each consumer's backlog: handle only what commits from now on.")
    ),
    reconnectDelay: secondsOption(
      "reconnect-delay",
      "Seconds before the first reconnect of a lost listen connection (then doubling). " +
        "Default: PGWATCH_RECONNECT_DELAY, else 0.5."
    ),
    shutdownTimeout: secondsOption(
      "shutdown-timeout",
      "Seconds in-flight handlers get to finish after SIGINT/SIGTERM before they are abandoned. " +
        "Default: PGWATCH_SHUTDOWN_TIMEOUT, else 10."
    ),
    listenUrl: Options.text("listen-url").pipe(
      Options.withDescription(
        "A direct or session-mode PostgreSQL URL for the LISTEN connection, when --database-url goes through a pooler in " +
          "transaction mode. Default: the config file's database.listenUrl, else PGWATCH_LISTEN_URL, else the same as the rest."
      ),
      Options.optional
    ),
    poolSize: Options.integer("pool-size").pipe(
      Options.withDescription(
        "Connections the query pool opens at most; the listen connection is one more. Default: the config file's " +
          `database.poolSize, else PGWATCH_POOL_SIZE, else ${PgWatch.defaultPoolSize}.`
      ),
      Options.withSchema(positiveInt("pool-size")),
      Options.optional
    )
  },
  (options) =>
    Effect.gen(function*() {
      const loaded = yield* ConfigFile.findOrFail({ path: options.config, cwd: process.cwd() })
      const discovered = yield* Discovery.discover(loaded, { apps: Discovery.names(options.apps) })
      const selected = yield* Discovery.select(discovered, {
        consumers: Discovery.names(options.consumers),
        exclude: Discovery.names(options.excludeConsumers)
      })
      if (options.listConsumers) {
        if (options.json) {
          return yield* Output.json(selected.map((d) => ({
            id: d.id,
            app: d.app,
            channels: d.channels,
            module: d.module,
            export: d.exportName
          })))
        }
        yield* Output.out(Output.table(
          ["CONSUMER", "APP", "CHANNELS", "MODULE"],
          selected.map((d) => [d.id, d.app, d.channels.join(","), `${d.module} (${d.exportName})`])
        ))
        return yield* Output.err(`${selected.length} consumer(s) from ${loaded.path}`)
      }
      const resolved = yield* targetFor(options, Option.some(loaded), options.listenUrl)
      const target = Option.match(options.poolSize, {
        onNone: () => resolved,
        onSome: (maxConnections) => ({ ...resolved, client: { ...resolved.client, maxConnections } })
      })
      // The library's settings from the environment (PgWatch.config); a flag overrides its own.
      const fromEnv = yield* Effect.flatMap(PgWatch.config, (env) => PgWatch.resolve({ ...env, schema: target.schema }))
      yield* Listen.run({
        target,
        selected,
        layer: Option.fromNullable(loaded.config.layer),
        pollInterval: options.timeout,
        pageSize: options.maxBatchSize,
        reconnectDelay: options.reconnectDelay,
        shutdownTimeout: Option.getOrElse(options.shutdownTimeout, () => fromEnv.shutdownTimeout),
        skipPlayback: options.skipPlayback,
        progress: process.stderr.isTTY ? "tty" : "lines"
      })
    })
).pipe(Command.withDescription(help(
  "Runs every consumer of the config file's apps, concurrently, in this process: plays back what each missed, " +
    "then follows live notifications. SIGINT/SIGTERM stops taking work, lets in-flight handlers finish " +
    "(up to --shutdown-timeout), saves progress and exits 0; a second signal exits at once.",
  [
    ["pgwatch listen", "run every consumer"],
    ["pgwatch listen --list-consumers", "list the consumers found, with app and channels"],
    ["pgwatch listen --apps orders,billing --exclude-consumers slow_report", "some apps, minus one consumer"],
    ["pgwatch listen --consumers order_mailer --skip-playback", "one consumer, ignoring its backlog"]
  ]
)))

// ---------------------------------------------------------------------------------------------
// migrate, cleanup

const migrate = Command.make(
  "migrate",
  {
    ...shared,
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Print the SQL that would run; change nothing."))
  },
  (options) =>
    Effect.gen(function*() {
      const { target } = yield* setup(options)
      const migrations = yield* Migrator.migrate({ schema: target.schema, dryRun: options.dryRun }).pipe(
        Effect.provide(Database.sqlLayer(target))
      )
      const name = (m: Migrator.Migration) => `${String(m.version).padStart(4, "0")}_${m.name}`
      if (migrations.length === 0) {
        return yield* Output.out(`schema ${target.schema} is up to date (${target.label})`)
      }
      if (options.dryRun) {
        yield* Output.out(`-- would apply ${migrations.length} migration(s) to schema ${target.schema} (${target.label}):`)
        for (const m of migrations) {
          yield* Output.out(`\n-- ${name(m)}\n${m.sql.trim()}`)
        }
        return
      }
      yield* Output.out(`applied ${migrations.map(name).join(", ")} to schema ${target.schema} (${target.label})`)
    })
).pipe(Command.withDescription(help(
  "Creates or updates pgwatch's tables and functions (the numbered files of sql/) in the schema. Safe to run " +
    "again and from two processes at once.",
  [["pgwatch migrate", "apply what is pending"], ["pgwatch migrate --dry-run --schema events", "show the SQL first"]]
)))

const cleanup = Command.make(
  "cleanup",
  {
    ...shared,
    days: Options.integer("days").pipe(
      Options.withDescription("Delete notifications older than this many days."),
      Options.withSchema(nonNegativeInt("days"))
    ),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Only count what would be deleted.")),
    force: Options.boolean("force").pipe(
      Options.withDescription("Also delete what a registered consumer has not processed, is dead-lettered or queued for redelivery.")
    )
  },
  (options) =>
    withWatch(options, () =>
      Effect.gen(function*() {
        const result = yield* Retention.cleanup({
          olderThan: Duration.days(options.days),
          dryRun: options.dryRun,
          force: options.force
        })
        yield* Output.out(
          `${options.dryRun ? "would delete" : "deleted"} ${result.deleted} notification(s) older than ${options.days} day(s)`
        )
        if (result.kept > 0) {
          yield* Output.out(
            `kept ${result.kept} older one(s) that consumers still need (unprocessed, dead-lettered or queued); --force deletes them too`
          )
        }
      }))
).pipe(Command.withDescription(help(
  "Deletes old notifications from the log. Unless --force, keeps what a registered consumer has not handled yet.",
  [["pgwatch cleanup --days 7 --dry-run", "count what a 7-day retention would delete"], [
    "pgwatch cleanup --days 7",
    "delete it"
  ]]
)))

// ---------------------------------------------------------------------------------------------
// notify

const readStdin = Effect.tryPromise({
  try: async () => {
    const chunks: Array<Buffer> = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString("utf8")
  },
  catch: (cause) => new CliError({ reason: "InvalidInput", message: `cannot read the payload from standard input: ${String(cause)}` })
})

/** A channel typed on the command line, checked before connecting: a bad one is a usage error. */
const typedChannel = (name: string) =>
  Channel.validate(name).pipe(Effect.mapError((error) => new CliError({ reason: "InvalidInput", message: error.message })))

const notify = Command.make(
  "notify",
  {
    ...shared,
    channel: Args.text({ name: "channel" }).pipe(Args.withDescription("The channel (a PostgreSQL identifier).")),
    payload: Args.text({ name: "json | -" }).pipe(Args.withDescription("The JSON payload, or - to read it from standard input."))
  },
  (options) =>
    Effect.gen(function*() {
      const channel = yield* typedChannel(options.channel)
      const text = options.payload === "-" ? yield* readStdin : options.payload
      const payload = yield* Effect.try({
        try: () => Json.parse(text),
        catch: (cause) =>
          new CliError({
            reason: "InvalidInput",
            message: `invalid JSON payload: ${cause instanceof Error ? cause.message : String(cause)}`
          })
      })
      const id = yield* withWatch(options, () => PgWatch.notify(channel, payload))
      yield* Output.out(String(id))
    })
).pipe(Command.withDescription(help(
  "Stores a notification in the log and wakes the channel's consumers; prints its log id.",
  [
    ["pgwatch notify orders '{\"order_id\": 42, \"event\": \"paid\"}'", "send one"],
    ["echo '{\"event\": \"ping\"}' | pgwatch notify health -", "payload from standard input"]
  ]
)))

// ---------------------------------------------------------------------------------------------
// triggers

const channelOption = Options.text("channel").pipe(
  Options.withDescription(`The notification channel. Default ${Triggers.defaultChannel}.`),
  Options.optional
)

const triggersAdd = Command.make(
  "add",
  { ...shared, table: Args.text({ name: "table" }), channel: channelOption },
  (options) =>
    Effect.gen(function*() {
      const channel = Option.isSome(options.channel) ? yield* typedChannel(options.channel.value) : undefined
      return yield* withWatch(options, () =>
        Effect.gen(function*() {
          const added = yield* Triggers.add(options.table, { channel })
          yield* Output.out(`trigger ${added.trigger} on ${added.table}: changes notify channel ${added.channel}`)
        }))
    })
).pipe(Command.withDescription(help("Adds (or replaces) the trigger that notifies every INSERT, UPDATE and DELETE of a table.", [
  ["pgwatch triggers add orders", "notify data_change"],
  ["pgwatch triggers add shop.orders --channel order_events", "a schema-qualified table, its own channel"]
])))

const triggersRemove = Command.make(
  "remove",
  { ...shared, table: Args.text({ name: "table" }), channel: channelOption },
  (options) =>
    Effect.gen(function*() {
      const channel = yield* typedChannel(Option.getOrElse(options.channel, () => Triggers.defaultChannel))
      return yield* withWatch(options, () =>
        Effect.gen(function*() {
          const removed = yield* Triggers.remove(options.table, { channel })
          yield* Output.out(removed ? `removed the ${channel} trigger from ${options.table}` : `${options.table} had no ${channel} trigger`)
        }))
    })
).pipe(Command.withDescription(help("Removes a table's notifying trigger for a channel.", [
  ["pgwatch triggers remove orders --channel order_events", "stop notifying order_events"]
])))

const triggersList = Command.make(
  "list",
  { ...shared, table: Args.text({ name: "table" }).pipe(Args.optional), json: jsonOption },
  (options) =>
    withWatch(options, () =>
      Effect.gen(function*() {
        const triggers = yield* Triggers.list({ table: Option.getOrUndefined(options.table) })
        if (options.json) return yield* Output.json(triggers)
        if (triggers.length === 0) return yield* Output.out("no notifying triggers")
        yield* Output.out(Output.table(["TABLE", "CHANNEL", "TRIGGER"], triggers.map((t) => [t.table, t.channel, t.trigger])))
      }))
).pipe(Command.withDescription(help("Lists the tables with notifying triggers (all, or one table's).", [
  ["pgwatch triggers list", "every table"],
  ["pgwatch triggers list orders", "one table"]
])))

const triggers = Command.make("triggers").pipe(
  Command.withDescription(help("Table triggers that turn row changes into notifications.", [
    ["pgwatch triggers add orders --channel order_events", "add one"],
    ["pgwatch triggers list", "list them"]
  ])),
  Command.withSubcommands([triggersAdd, triggersRemove, triggersList])
)

// ---------------------------------------------------------------------------------------------
// status

/** running on web-1:4242 since 2024-05-01 10:00:00Z | stopped | running? (web-1:4242, its session is gone) */
const runState = (r: Admin.ConsumerStatus): string => {
  const where = r.runningOn === null ? "" : `${r.runningOn.host}:${r.runningOn.pid}`
  switch (r.state) {
    case "running":
      return `running on ${where} since ${Output.time(r.runningOn!.since)}`
    case "unknown":
      return r.runningOn?.backendPid === null
        ? `running? (${where}, not connected yet)`
        : `running? (${where}, its session is gone: died or reconnecting)`
    case "stopped":
      return "stopped"
  }
}

/** The error it is retrying now (with the notification and for how long), else the last one. */
const errorText = (r: Admin.ConsumerStatus, now: number): string =>
  r.currentError !== null
    ? Output.clip(
      `retrying #${r.currentError.logId} for ${Output.age((now - r.currentError.since.getTime()) / 1000)}: ${r.currentError.error}`,
      80
    )
    : r.lastError !== null
    ? Output.clip(`last: ${r.lastError}`)
    : ""

const status = Command.make(
  "status",
  {
    ...shared,
    consumer: Options.text("consumer").pipe(Options.withDescription("Only these consumers (repeat or comma-separate)."), Options.repeated),
    json: jsonOption
  },
  (options) =>
    withWatch(options, (target) =>
      Effect.gen(function*() {
        const wanted = Discovery.names(options.consumer)
        const rows = yield* Admin.status(wanted.length === 0 ? {} : { consumerIds: wanted })
        const usage = yield* Admin.queueUsage
        if (wanted.length > 0) {
          const missing = wanted.filter((id) => !rows.some((r) => r.id === id))
          if (missing.length > 0) {
            const known = (yield* Admin.status()).map((r) => r.id)
            return yield* new CliError({
              reason: "UnknownName",
              message: `unknown consumer${missing.length > 1 ? "s" : ""} ${missing.map((m) => `"${m}"`).join(", ")}; ` +
                (known.length === 0 ? "no consumer has registered yet" : `registered consumers: ${known.join(", ")}`)
            })
          }
        }
        if (options.json) return yield* Output.json({ schema: target.schema, consumers: rows, notifyQueueUsage: usage })
        if (rows.length === 0) {
          yield* Output.out(`no consumer has registered in schema ${target.schema} yet (a consumer registers when it first runs)`)
        } else {
          const now = Date.now()
          yield* Output.out(Output.table(
            [
              "CONSUMER",
              "STATE",
              "CHANNEL",
              "LAST ID",
              "LAST SAVED",
              "HANDLED",
              "PENDING",
              "LAG",
              "DEAD LETTERS",
              "QUEUED",
              "DELIVERY",
              "ATTEMPT",
              "ERROR"
            ],
            rows.flatMap((r) =>
              r.byChannel.map((c, i) => [
                i === 0 ? r.id : "",
                i === 0 ? runState(r) : "",
                c.channel,
                i === 0 ? (r.lastLogId === null ? "-" : String(r.lastLogId)) : "",
                i === 0 ? `${Output.age((now - r.updatedAt.getTime()) / 1000)} ago` : "",
                i === 0 ? String(r.handled) : "",
                String(c.pending),
                c.pending === 0 ? "-" : Output.age(c.lagSeconds),
                String(c.deadLetters),
                i === 0 ? String(r.redeliveries) : "",
                i === 0 ? (r.deliveryMode ?? "-") : "",
                i === 0 && r.currentError !== null ? String(r.currentError.attempt) : "",
                i === 0 ? errorText(r, now) : ""
              ])
            )
          ))
        }
        yield* Output.out(`NOTIFY queue usage: ${(usage * 100).toFixed(usage > 0 && usage < 0.001 ? 4 : 1)}%`)
      }))
).pipe(Command.withDescription(help(
  "Where each consumer stands: whether it runs (on which host and process, since when), then per channel the last " +
    "handled log id, when progress was last saved, notifications handled, pending (lag count and age of the " +
    "oldest), dead letters, redeliveries queued, and the error it is retrying now (with the attempt) or the last " +
    "one; and the server's NOTIFY queue usage (pg_notification_queue_usage()).",
  [["pgwatch status", "every consumer"], ["pgwatch status --consumer order_mailer --json", "one, as JSON"]]
)))

// ---------------------------------------------------------------------------------------------
// failures

const failuresRedrive = Command.make(
  "redrive",
  {
    ...shared,
    all: Options.boolean("all").pipe(Options.withDescription("Every dead letter.")),
    consumer: Options.text("consumer").pipe(Options.withDescription("This consumer's dead letters."), Options.optional),
    ids: Options.text("ids").pipe(Options.withDescription("Dead letters of these log ids (comma-separated)."), Options.optional)
  },
  (options) =>
    Effect.gen(function*() {
      if (!options.all && Option.isNone(options.consumer) && Option.isNone(options.ids)) {
        return yield* new CliError({
          reason: "InvalidInput",
          message: "say which dead letters to re-drive: --all, --consumer <id> and/or --ids <log ids>"
        })
      }
      const logIds = Option.isSome(options.ids) ? yield* parseLogIds(options.ids.value) : undefined
      const moved = yield* withWatch(options, () =>
        Admin.redrive({ consumerId: Option.getOrUndefined(options.consumer), logIds }))
      if (moved.length === 0) return yield* Output.out("no dead letters to re-drive")
      yield* Output.out(
        `re-driving ${moved.length} dead letter(s): ${moved.map((m) => `${m.consumerId} #${m.logId}`).join(", ")}`
      )
      yield* Output.out("running consumers pick them up at once")
    })
).pipe(Command.withDescription(help(
  "Hands dead letters back to their consumers: they move to the redelivery queue and the consumers' channels " +
    "are woken. One that fails again is dead-lettered again.",
  [
    ["pgwatch failures redrive --all", "everything"],
    ["pgwatch failures redrive --consumer order_mailer", "one consumer's"],
    ["pgwatch failures redrive --ids 1042,1043", "some notifications"]
  ]
)))

const failuresDiscard = Command.make(
  "discard",
  {
    ...shared,
    consumer: Args.text({ name: "consumer" }).pipe(Args.withDescription("The consumer whose dead letters to delete.")),
    ids: Args.text({ name: "log id" }).pipe(
      Args.withDescription("Log ids of the dead letters to delete (or comma-separated)."),
      Args.repeated
    ),
    all: Options.boolean("all").pipe(Options.withDescription("Every dead letter of the consumer."))
  },
  (options) =>
    Effect.gen(function*() {
      if (options.all === (options.ids.length > 0)) {
        return yield* new CliError({
          reason: "InvalidInput",
          message: `say which dead letters of ${options.consumer} to discard: log ids, or --all (not both)`
        })
      }
      const logIds = options.all ? undefined : yield* parseLogIds(options.ids.join(","))
      const discarded = yield* withWatch(options, () => Admin.discardDeadLetters({ consumerId: options.consumer, logIds }))
      if (discarded.length === 0) return yield* Output.out(`${options.consumer} has no dead letters`)
      yield* Output.out(
        `discarded ${discarded.length} dead letter(s) of ${options.consumer}: ${discarded.join(", ")} ` +
          "(cleanup may now delete their notifications)"
      )
    })
).pipe(Command.withDescription(help(
  "Deletes dead letters for good: the consumer never handles those notifications, and cleanup may delete them. " +
    "Unknown log ids are an error, and then nothing is deleted.",
  [
    ["pgwatch failures discard order_mailer 1042 1043", "two dead letters"],
    ["pgwatch failures discard order_mailer --all", "all of one consumer's"]
  ]
)))

const failures = Command.make(
  "failures",
  {
    ...shared,
    consumer: Options.text("consumer").pipe(Options.withDescription("Only this consumer's dead letters."), Options.optional),
    limit: Options.integer("limit").pipe(
      Options.withDescription("At most this many (a whole number above 0)."),
      Options.withSchema(positiveInt("limit")),
      Options.withDefault(100)
    ),
    json: jsonOption
  },
  (options) =>
    withWatch(options, () =>
      Effect.gen(function*() {
        const dead = yield* Admin.deadLetters({ consumerId: Option.getOrUndefined(options.consumer), limit: options.limit })
        if (options.json) return yield* Output.json(dead)
        if (dead.length === 0) return yield* Output.out("no dead letters")
        const now = Date.now()
        yield* Output.out(Output.table(
          ["LOG ID", "CONSUMER", "CHANNEL", "REASON", "ATTEMPTS", "FAILED", "ERROR"],
          dead.map((d) => [
            String(d.logId),
            d.consumerId,
            d.channel,
            d.reason,
            String(d.attempts),
            `${Output.age((now - d.failedAt.getTime()) / 1000)} ago`,
            Output.clip(d.error, 80)
          ])
        ))
        yield* Output.err("re-drive with: pgwatch failures redrive --all | --consumer <id> | --ids <log ids>")
        yield* Output.err("or delete for good: pgwatch failures discard <consumer> <log ids...> | --all")
      }))
).pipe(
  Command.withDescription(help(
    "Lists dead letters: notifications a consumer gave up on (a permanent error, a payload that failed its schema, " +
      "or retries exhausted), oldest first. `failures redrive` hands them back; `failures discard` deletes them.",
    [
      ["pgwatch failures", "list them"],
      ["pgwatch failures --consumer order_mailer --json", "one consumer's, as JSON"],
      ["pgwatch failures redrive --consumer order_mailer", "re-drive them"]
    ]
  )),
  Command.withSubcommands([failuresRedrive, failuresDiscard])
)

// ---------------------------------------------------------------------------------------------
// consumers

/** Asks on a terminal; elsewhere `--yes` must say it. */
const confirmed = (question: string, yes: boolean) =>
  Effect.gen(function*() {
    if (yes) return true
    if (process.stdin.isTTY !== true || process.stdout.isTTY !== true) {
      return yield* new CliError({
        reason: "InvalidInput",
        message: `${question} Not on a terminal, so nobody can confirm: pass --yes`
      })
    }
    // Ctrl-C or the end of input is a no.
    return yield* Prompt.confirm({ message: question, initial: false }).pipe(
      Effect.catchTag("QuitException", () => Effect.succeed(false))
    )
  })

const consumersRemove = Command.make(
  "remove",
  {
    ...shared,
    consumer: Args.text({ name: "consumer" }).pipe(Args.withDescription("The consumer to remove, by id.")),
    yes: Options.boolean("yes").pipe(
      Options.withAlias("y"),
      Options.withDescription("Do not ask for confirmation (required when not on a terminal).")
    ),
    force: Options.boolean("force").pipe(
      Options.withDescription(
        "Also remove a consumer marked running whose session is gone (status: running?), once you know its process is."
      )
    )
  },
  (options) =>
    withWatch(options, () =>
      Effect.gen(function*() {
        const [found] = yield* Admin.status({ consumerIds: [options.consumer] })
        const what = found === undefined
          ? ""
          : ` its position${found.pending > 0 ? ` (${found.pending} notification(s) not handled yet)` : ""}, ` +
            `${found.deadLetters} dead letter(s) and ${found.redeliveries} queued redelivery(ies)`
        const ok = found === undefined || (yield* confirmed(`Remove consumer ${options.consumer} and${what}?`, options.yes))
        if (!ok) return yield* Output.err("nothing removed")
        const removed = yield* Admin.removeConsumer(options.consumer, { force: options.force })
        yield* Output.out(
          `removed consumer ${removed.consumerId} with ${removed.deadLetters} dead letter(s) and ${removed.redeliveries} ` +
            "queued redelivery(ies); if it runs again, it starts as a new consumer"
        )
      }))
).pipe(Command.withDescription(help(
  "Removes a consumer that is not running: its position, dead letters, queued redeliveries and waiting " +
    "registration. What it held back from cleanup may then be deleted. Asks first on a terminal; elsewhere " +
    "--yes is required.",
  [
    ["pgwatch consumers remove old_report", "asks, then removes"],
    ["pgwatch consumers remove old_report --yes", "in a script"]
  ]
)))

const consumers = Command.make("consumers").pipe(
  Command.withDescription(help("Registered consumers (status shows them).", [
    ["pgwatch consumers remove old_report --yes", "remove one"]
  ])),
  Command.withSubcommands([consumersRemove])
)

// ---------------------------------------------------------------------------------------------
// replay

const parseSince = (text: string): Effect.Effect<Date, CliError> =>
  Either.mapLeft(Since.parseSince(text, Date.now()), (message) => new CliError({ reason: "InvalidInput", message }))

const replay = Command.make(
  "replay",
  {
    ...shared,
    consumer: Options.text("consumer").pipe(Options.withDescription("The consumer to hand the notifications to.")),
    ids: Options.text("ids").pipe(Options.withDescription("Log ids, comma-separated."), Options.optional),
    since: Options.text("since").pipe(
      Options.withDescription("Everything on the consumer's channels written since a time or for an age (2h, 1d)."),
      Options.optional
    )
  },
  (options) =>
    Effect.gen(function*() {
      if (Option.isSome(options.ids) === Option.isSome(options.since)) {
        return yield* new CliError({ reason: "InvalidInput", message: "replay needs exactly one of --ids or --since" })
      }
      const selection: Admin.ReplaySelection = Option.isSome(options.ids)
        ? { consumerId: options.consumer, logIds: yield* parseLogIds(options.ids.value) }
        : { consumerId: options.consumer, since: yield* parseSince(Option.getOrThrow(options.since)) }
      const queued = yield* withWatch(options, () => Admin.replay(selection))
      if (queued.length === 0) return yield* Output.out(`nothing to replay for ${options.consumer}`)
      const shown = queued.length <= 20 ? queued.join(", ") : `${queued.slice(0, 20).join(", ")}, ...`
      yield* Output.out(`queued ${queued.length} notification(s) for ${options.consumer} to handle again: ${shown}`)
      yield* Output.out("a running consumer picks them up at once")
    })
).pipe(Command.withDescription(help(
  "Marks notifications for a consumer to handle again (they arrive flagged as replays); its position in the log " +
    "does not move.",
  [
    ["pgwatch replay --consumer order_mailer --ids 1042,1043", "two notifications"],
    ["pgwatch replay --consumer search_indexer --since 2h", "everything of the last two hours"]
  ]
)))

// ---------------------------------------------------------------------------------------------
// demo

const demo = Command.make(
  "demo",
  {
    databaseUrl: shared.databaseUrl,
    schema: Options.text("schema").pipe(
      Options.withDescription(
        `The demo's own schema (its table, log and consumers). Default ${Demo.defaultSchema}; never PGWATCH_SCHEMA.`
      ),
      Options.withDefault(Demo.defaultSchema)
    ),
    embedded: Options.boolean("embedded").pipe(Options.withDescription("Use the embedded PostgreSQL even if a database is configured.")),
    clean: Options.boolean("clean").pipe(Options.withDescription("Drop the demo's schema (what earlier runs left) and exit."))
  },
  (options) =>
    Effect.gen(function*() {
      yield* typedSchema(Option.some(options.schema))
      const target = yield* Database.resolve({
        databaseUrl: options.databaseUrl,
        schema: Option.some(options.schema),
        config: Option.none()
      })
      yield* Demo.run({ target, embedded: options.embedded, cwd: process.cwd(), clean: options.clean })
    })
).pipe(Command.withDescription(help(
  "The quick-start demo: a table with a notifying trigger, a producer and two consumers; one consumer stops, " +
    "misses some changes, starts again and replays them. With no database configured it runs on an embedded " +
    "PostgreSQL whose data stays in .pgwatch/embedded. On a configured database it works in a schema of its own " +
    `(${Demo.defaultSchema}), never your app's; it stays there so a second run replays what the first left, ` +
    "until --clean drops it.",
  [
    ["pgwatch demo", "on the embedded PostgreSQL (or the configured database)"],
    ["pgwatch demo --database-url postgres://localhost/test", `on your database, in schema ${Demo.defaultSchema}`],
    ["pgwatch demo --clean", "drop the demo's schema"]
  ]
)))

// ---------------------------------------------------------------------------------------------

/**
 * The root command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("pgwatch").pipe(
  Command.withDescription(help(
    "Guaranteed, replayable PostgreSQL LISTEN/NOTIFY: run your apps' consumers, migrate, clean up, inspect. " +
      "Consumers are found through pgwatch.config.ts (or .mts, .js, .mjs).",
    [
      ["pgwatch migrate", "create pgwatch's tables"],
      ["pgwatch listen", "run every consumer"],
      ["pgwatch notify orders '{\"id\": 1}'", "send a notification"],
      ["pgwatch status", "lag and failures per consumer"],
      ["pgwatch demo", "the quick-start demo"]
    ]
  )),
  Command.withSubcommands([listen, migrate, cleanup, notify, triggers, status, failures, consumers, replay, demo, Grant.command])
)

const runCommand = Command.run(command, { name: "pgwatch", version: "0.1.0" })

/**
 * Parses the arguments (`process.argv`) and runs the command.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (args: ReadonlyArray<string>) =>
  // The scope of the whole run: an embedded server (--embedded) stops after the command.
  Effect.scoped(runCommand(args))
