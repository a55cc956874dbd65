/**
 * `pgwatch grant <role> --as producer|consumer|operator`: gives a login role what one kind of
 * pgwatch user needs, through a group role named after the schema (README "Roles and
 * privileges").
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as Roles from "@pgwatch/core/Roles"
import * as Effect from "effect/Effect"
import * as Pg from "pg"
import * as Database from "../Database.js"
import * as Output from "../internal/output.js"
import { setup, shared } from "./shared.js"

/** The SQL `grant` runs, for a database administrator to run by hand. */
const script = (schemaName: string, kind: Roles.Kind, role: string) => {
  const group = Pg.escapeIdentifier(Roles.groupRole(schemaName, kind))
  return [
    `-- as a role with CREATEROLE, unless ${group} exists:`,
    `CREATE ROLE ${group} NOLOGIN;`,
    `-- as the owner of schema ${schemaName}:`,
    ...Roles.statements(schemaName, kind).map((statement) => `${statement};`),
    `GRANT ${group} TO ${Pg.escapeIdentifier(role)};`
  ].join("\n")
}

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "grant",
  {
    ...shared,
    role: Args.text({ name: "role" }).pipe(Args.withDescription("The login role of the app or person (it must exist).")),
    kind: Options.choice("as", Roles.kinds).pipe(Options.withDescription("What the role does with pgwatch.")),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Print the SQL instead of running it; connect to nothing."))
  },
  (options) =>
    Effect.gen(function*() {
      const { target } = yield* setup(options)
      if (options.dryRun) return yield* Output.out(script(target.schema, options.kind, options.role))
      const granted = yield* Roles.grant({ role: options.role, kind: options.kind }).pipe(
        Effect.provide(Database.watchLayer(target))
      )
      yield* Output.out(
        `${granted.role} is a member of ${granted.group}${granted.createdGroup ? " (created)" : ""}: ` +
          `${options.kind} privileges on schema ${target.schema} (${target.label})`
      )
    })
).pipe(Command.withDescription(HelpDoc.blocks([
  HelpDoc.p(
    "Gives a login role what a producer (store notifications), consumer (run consumers: pgwatch listen) or operator " +
      "(status, failures, redrive, replay, cleanup, triggers) needs, and nothing more: it becomes a member of the " +
      "group role <schema>_<kind>, created NOLOGIN if missing. Run it as the owner of pgwatch's schema (the role " +
      "that runs pgwatch migrate); creating the group needs CREATEROLE. Run it again after a migration."
  ),
  HelpDoc.h2("EXAMPLES"),
  ...[
    ["pgwatch grant app_writer --as producer", "an app that stores notifications"],
    ["pgwatch grant app_worker --as consumer", "the role pgwatch listen runs as"],
    ["pgwatch grant oncall --as operator --dry-run", "print the SQL for a database administrator"]
  ].flatMap(([example, explanation]) => [HelpDoc.p(Span.weak(`# ${explanation}`)), HelpDoc.p(Span.code(`$ ${example}`))])
])))
