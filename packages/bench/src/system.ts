import type { Payload } from "./payload.js"

/**
 * Where notifications go in one scenario step: a channel (pgwatch, floor), a task (graphile-
 * worker) or queue/event (pg-boss) named `name`, read by `consumers` independent consumers, each
 * of which must see every notification.
 */
export interface Topic {
  readonly name: string
  readonly consumers: number
}

/** Writes notifications; `connection` picks one of the producer's connections. */
export interface Producer {
  /** One notification, in a transaction of its own. */
  readonly send: (connection: number, payload: Payload) => Promise<void>
  /** Many notifications in one transaction. */
  readonly sendBatch: (connection: number, payloads: ReadonlyArray<Payload>) => Promise<void>
  readonly close: () => Promise<void>
}

/** Called at the very start of a handler, with the consumer's index and the decoded payload. */
export type OnHandled = (consumer: number, payload: unknown) => void

export interface Consumers {
  /** Stops taking work and closes every connection. */
  readonly stop: () => Promise<void>
}

/**
 * One system under test. `setup` runs once per run in the system's own empty database;
 * `prepare` once per topic before anything produces or consumes on it. `consume` runs in a
 * consumer child process.
 */
export interface System {
  readonly name: SystemName
  /** Name and version as printed. */
  readonly label: string
  /** How it was configured, and what it guarantees compared with pgwatch. */
  readonly notes: string
  /**
   * Whether its consumers can miss a notification for good (the floor's `id > last` reader
   * skips a row that commits after a higher id); the bench then waits less for stragglers.
   */
  readonly skipsLateCommits: boolean
  /** The scenarios it takes part in, by name; all when absent. */
  readonly scenarios?: ReadonlyArray<string>
  readonly setup: (url: string) => Promise<void>
  readonly prepare: (url: string, topic: Topic) => Promise<void>
  readonly producer: (url: string, topic: Topic, connections: number) => Promise<Producer>
  readonly consume: (url: string, topic: Topic, onHandled: OnHandled) => Promise<Consumers>
  /**
   * Transaction start (`created_at`, wall-clock microseconds) of each notification on the topic
   * by sequence number, for systems that keep their rows after handling.
   */
  readonly createdAt?: (url: string, topic: Topic) => Promise<ReadonlyMap<number, number>>
}

export type SystemName = "pgwatch" | "pgwatch-sql" | "graphile-worker" | "pg-boss" | "floor" | "floor+notify" | "floor+payload"
