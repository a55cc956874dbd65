/**
 * `npm run bench` (quick) / `npm run bench -- --full`: every scenario for every system against
 * one PostgreSQL, then a table on stdout, results/latest.json and BENCHMARKS.md.
 */
import * as NodeOs from "node:os"
import * as Database from "./database.js"
import * as Mode from "./mode.js"
import * as Progress from "./progress.js"
import * as Report from "./report.js"
import type { Context, Row } from "./scenario.js"
import * as FanOut from "./scenarios/fanOut.js"
import * as Latency from "./scenarios/latency.js"
import * as Live from "./scenarios/live.js"
import * as NotifyCost from "./scenarios/notifyCost.js"
import * as Playback from "./scenarios/playback.js"
import * as Scale from "./scenarios/scale.js"
import type { System } from "./system.js"
import * as Systems from "./systems/index.js"

/** A scenario; `systems: false` for one that measures pgwatch alone, in a database of its own. */
const scenarios: ReadonlyArray<{
  readonly name: string
  readonly run: (context: Context) => Promise<Array<Row>>
  readonly systems?: false
}> = [
  { name: "live", run: Live.run },
  { name: "latency", run: Latency.run },
  { name: "playback", run: Playback.run },
  { name: "fan-out", run: FanOut.run },
  { name: "notify-cost", run: NotifyCost.run },
  { name: "scale", run: Scale.run, systems: false }
]

const main = async () => {
  const argv = process.argv.slice(2)
  const mode = argv.includes("--full") ? Mode.full : Mode.quick
  const only = argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length).split(",")
  const systemsArg = argv.find((arg) => arg.startsWith("--systems="))?.slice("--systems=".length).split(",")
  const systems = await Promise.all(
    Systems.names.filter((name) => systemsArg === undefined || systemsArg.includes(name)).map(Systems.load)
  )
  const startedAt = new Date()
  const loadAtStart = NodeOs.loadavg()[0]!

  const server = await Database.server()
  Progress.log(`${mode.name} run against ${server.origin} PostgreSQL`)
  try {
    const info = await Database.info(server.url)
    const selected = scenarios.filter((scenario) => only === undefined || only.includes(scenario.name))
    const urls = new Map<System, string>()
    for (const system of selected.some((scenario) => scenario.systems !== false) ? systems : []) {
      const database = Database.databaseName(system.name)
      await Database.recreate(server.url, database)
      const url = Database.databaseUrl(server.url, database)
      await system.setup(url)
      urls.set(system, url)
      Progress.log(`set up ${system.label} in database ${database}`)
    }
    const context: Context = {
      mode,
      serverUrl: server.url,
      systems,
      urlOf: (system) => urls.get(system)!,
      topic: async (system, step, consumers) => {
        const topic = { name: step, consumers }
        await system.prepare(urls.get(system)!, topic)
        return topic
      }
    }
    const rows: Array<Row> = []
    for (const scenario of selected) {
      Progress.log(`scenario ${scenario.name}`)
      const taking = systems.filter((system) => system.scenarios?.includes(scenario.name) ?? true)
      rows.push(...await scenario.run({ ...context, systems: taking }))
    }
    const results = Report.results({ mode, startedAt, loadAtStart, server: server.origin, info, systems, rows, argv })
    process.stdout.write(Report.text(results))
    await Report.write(results)
  } finally {
    await server.stop()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
