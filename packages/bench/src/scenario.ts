/** What every scenario gets, and what it hands back. */
import * as ConsumerChild from "./consumerChild.js"
import type { Mode } from "./mode.js"
import type { System, SystemName, Topic } from "./system.js"

export interface Context {
  readonly mode: Mode
  /** The server's URL (any database on it). */
  readonly serverUrl: string
  readonly systems: ReadonlyArray<System>
  /** The URL of a system's own database. */
  readonly urlOf: (system: System) => string
  /** A fresh topic (prepared in the system's database) for one step. */
  readonly topic: (system: System, step: string, consumers: number) => Promise<Topic>
}

/** One measured figure set: one system in one variant of one scenario. */
export interface Row {
  readonly scenario: string
  readonly variant: string
  readonly system: SystemName
  readonly metrics: Readonly<Record<string, number>>
  /** Why a figure is missing or qualified. */
  readonly note?: string
}

/** A consumer child for a system's topic, already consuming. */
export const startConsumers = async (context: Context, system: System, topic: Topic, echo = false) => {
  const child = await ConsumerChild.spawn({ system: system.name, url: context.urlOf(system), topic, echo })
  const started = await child.start()
  return { child, ...started }
}
