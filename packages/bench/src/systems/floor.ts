/**
 * PostgreSQL's own floors: the same inserts done by a bare `pg` client with nothing on top, and
 * the plainest possible readers: `id > last`, one page at a time (`make`), or the NOTIFY's own
 * payload handed to the handler (`payloadFloor`). No stored progress, no gap safety (a row that
 * commits after a higher id is skipped, a NOTIFY sent while not listening is lost), no
 * retries: they show what the database costs, not a usable system.
 */
import * as Pg from "pg"
import { sleep } from "../clock.js"
import { bareProducer, connect, createdAtBySeq, withClient } from "../pg.js"
import type { Consumers, OnHandled, System, Topic } from "../system.js"

const PAGE_SIZE = 1000
/** How often a caught-up reader without NOTIFY looks again. */
const POLL_MS = 1
/** How long a caught-up reader with NOTIFY waits before looking anyway. */
const SAFETY_POLL_MS = 1000

const INSERT = "INSERT INTO bench_log (channel, payload) VALUES ($1, $2::jsonb)"
const INSERT_AND_NOTIFY = `
  WITH row AS (INSERT INTO bench_log (channel, payload) VALUES ($1, $2::jsonb) RETURNING id)
  SELECT pg_notify($1, '') FROM row`
const INSERT_MANY = "INSERT INTO bench_log (channel, payload) SELECT $1, p FROM unnest($2::jsonb[]) AS p"
const INSERT_MANY_AND_NOTIFY = `
  WITH rows AS (INSERT INTO bench_log (channel, payload) SELECT $1, p FROM unnest($2::jsonb[]) AS p RETURNING id)
  SELECT pg_notify($1, '') WHERE EXISTS (SELECT 1 FROM rows)`

/** One reader: pages through the channel by id, then polls (or waits for a NOTIFY). */
const read = (client: Pg.Client, topic: Topic, index: number, wake: boolean, onHandled: OnHandled) => {
  let stopped = false
  let woken = false
  let wakeUp: (() => void) | undefined
  client.on("notification", () => {
    woken = true
    wakeUp?.()
  })
  const waitForWake = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      wakeUp = () => {
        clearTimeout(timer)
        resolve()
      }
    }).finally(() => (wakeUp = undefined))

  const loop = (async () => {
    if (wake) await client.query(`LISTEN ${Pg.escapeIdentifier(topic.name)}`)
    let last = "0"
    while (!stopped) {
      woken = false
      const { rows } = await client.query<{ id: string; payload: unknown }>(
        // Ordered by the bigint column: `ORDER BY id` would sort the text output column.
        "SELECT l.id::text AS id, l.payload FROM bench_log l WHERE l.channel = $1 AND l.id > $2::bigint ORDER BY l.id LIMIT $3",
        [topic.name, last, PAGE_SIZE]
      )
      for (const row of rows) onHandled(index, row.payload)
      if (rows.length > 0) last = rows[rows.length - 1]!.id
      if (rows.length === PAGE_SIZE || stopped) continue
      if (!wake) await sleep(POLL_MS)
      else if (!woken) await waitForWake(SAFETY_POLL_MS)
    }
  })()
  return async () => {
    stopped = true
    wakeUp?.()
    await loop.catch(() => undefined)
    await client.end().catch(() => undefined)
  }
}

/** The log table every floor writes, with the page reader's index. */
const setup = (url: string) =>
  withClient(url, async (client) => {
    await client.query(`CREATE TABLE bench_log (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      channel text NOT NULL,
      payload jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`)
    // The reader's index: without it, once the table holds other steps' rows, every poll
    // scans them all (seen: 98 ms per read in a full run).
    await client.query("CREATE INDEX bench_log_channel_id ON bench_log (channel, id)")
  })

const createdAt = (url: string, topic: Topic) =>
  withClient(url, async (client) => {
    const { rows } = await client.query<{ seq: number; us: string }>(
      `SELECT (payload->>'seq')::int AS seq, (extract(epoch FROM created_at) * 1e6)::bigint::text AS us
         FROM bench_log WHERE channel = $1`,
      [topic.name]
    )
    return createdAtBySeq(rows)
  })

export const make = (wake: boolean): System => ({
  name: wake ? "floor+notify" : "floor",
  label: wake ? "floor: INSERT + pg_notify (bare pg)" : "floor: INSERT only (bare pg)",
  skipsLateCommits: true,
  notes: wake
    ? "Bare `pg`: one statement inserts the row and calls pg_notify in the same transaction; readers LISTEN and page by id (index on (channel, id)). No progress, no gap safety."
    : "Bare `pg`: one INSERT per transaction; readers poll every 1 ms when caught up and page by id (index on (channel, id)). No NOTIFY, no progress, no gap safety.",
  setup,
  prepare: async () => undefined,
  producer: (url, topic, connections) =>
    bareProducer(url, topic.name, connections, "bench producer", {
      one: wake ? INSERT_AND_NOTIFY : INSERT,
      many: wake ? INSERT_MANY_AND_NOTIFY : INSERT_MANY
    }),
  consume: async (url, topic, onHandled): Promise<Consumers> => {
    const clients = await Promise.all(Array.from({ length: topic.consumers }, () => connect(url, "bench reader")))
    const stops = clients.map((client, i) => read(client, topic, i, wake, onHandled))
    return { stop: () => Promise.all(stops.map((stop) => stop())).then(() => undefined) }
  },
  createdAt
})

// The seed's NOTIFY (django-pgwatch's smart_notify): the row's id, its time and the payload.
const NOTIFY_ROW = "json_build_object('notification_log_id', id, 'timestamp', created_at, 'data', payload)::text"
const INSERT_AND_NOTIFY_ROW = `
  WITH row AS (INSERT INTO bench_log (channel, payload) VALUES ($1, $2::jsonb) RETURNING id, created_at, payload)
  SELECT pg_notify($1, ${NOTIFY_ROW}) FROM row`
const INSERT_MANY_AND_NOTIFY_ROWS = `
  WITH rows AS (INSERT INTO bench_log (channel, payload) SELECT $1, p FROM unnest($2::jsonb[]) AS p RETURNING id, created_at, payload)
  SELECT count(pg_notify($1, ${NOTIFY_ROW})) FROM rows`

/**
 * The live floor: the seed's design without its guarantees. Each commit NOTIFYs every row with
 * its payload, and a reader hands each NOTIFY's payload straight to the handler: no page read,
 * no verification, no playback (so it sits out the playback scenario), nothing found again
 * when a NOTIFY is lost.
 */
export const payloadFloor: System = {
  name: "floor+payload",
  label: "floor: LISTEN, payload in the NOTIFY (bare pg)",
  skipsLateCommits: false,
  notes:
    "Bare `pg`: one statement inserts the row and calls pg_notify per row with `{notification_log_id, timestamp, data}` (the seed's NOTIFY); each reader LISTENs and hands JSON.parse(payload).data straight to the handler. No log read, no playback, no signature, no progress: a NOTIFY sent while not listening is lost. Run in the live, latency, fan-out and notify-cost scenarios.",
  scenarios: ["live", "latency", "fan-out", "notify-cost"],
  setup,
  prepare: async () => undefined,
  producer: (url, topic, connections) =>
    bareProducer(url, topic.name, connections, "bench producer", {
      one: INSERT_AND_NOTIFY_ROW,
      many: INSERT_MANY_AND_NOTIFY_ROWS
    }),
  consume: async (url, topic, onHandled): Promise<Consumers> => {
    const clients = await Promise.all(Array.from({ length: topic.consumers }, () => connect(url, "bench listener")))
    await Promise.all(clients.map((client, i) => {
      client.on("notification", (message) => onHandled(i, (JSON.parse(message.payload ?? "null") as { data?: unknown })?.data))
      return client.query(`LISTEN ${Pg.escapeIdentifier(topic.name)}`)
    }))
    return { stop: () => Promise.all(clients.map((client) => client.end().catch(() => undefined))).then(() => undefined) }
  },
  createdAt
}
