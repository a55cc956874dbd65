/**
 * pg-boss 10.x, the newest line that runs on Node 20 (11+ needs Node 22). Producers call
 * `send` / `insert`; fan-out uses its pub/sub (`subscribe` a queue per consumer, `publish`,
 * which sends one job per subscribed queue, each in its own statement). Workers poll: in 10.x
 * a worker has no LISTEN; after each fetch it sleeps for the polling interval (at least 0.5 s)
 * unless the fetch and handling took longer. Speed settings: the shortest polling interval,
 * large fetch batches and several workers per queue; cron scheduling and maintenance off.
 */
import PgBoss from "pg-boss"
import type { Payload } from "../payload.js"
import { createdAtBySeq, withClient } from "../pg.js"
import type { Consumers, Producer, System, Topic } from "../system.js"

const BATCH_SIZE = 1000
const WORKERS_PER_QUEUE = 4

const queue = (topic: Topic, i: number) => `${topic.name}_${i}`

const boss = async (url: string, max: number) => {
  const instance = new PgBoss({ connectionString: url, max, schedule: false, supervise: false, migrate: false })
  instance.on("error", (error) => console.error(`pg-boss: ${error.message}`))
  await instance.start()
  return instance
}

export const system: System = {
  name: "pg-boss",
  label: "pg-boss 10.4.2",
  skipsLateCommits: false,
  notes: `Job queue: each job runs once, then stays as completed until archived; fan-out via publish/subscribe (one queue per subscriber, one INSERT per queue, not in one transaction). Workers poll (no LISTEN in 10.x): pollingIntervalSeconds 0.5 (the minimum), batchSize ${BATCH_SIZE}, ${WORKERS_PER_QUEUE} workers per queue; schedule and supervise off. Newest 10.x because 11+ needs Node 22.`,
  setup: async (url) => {
    const instance = new PgBoss({ connectionString: url, schedule: false, supervise: false })
    await instance.start()
    await instance.stop({ graceful: false, wait: true })
  },
  prepare: async (url, topic) => {
    const instance = await boss(url, 2)
    for (let i = 0; i < topic.consumers; i++) {
      await instance.createQueue(queue(topic, i))
      if (topic.consumers > 1) await instance.subscribe(topic.name, queue(topic, i))
    }
    await instance.stop({ graceful: false, wait: true })
  },
  producer: async (url, topic, connections): Promise<Producer> => {
    const instance = await boss(url, connections)
    const jobs = (payloads: ReadonlyArray<Payload>) =>
      payloads.flatMap((data) => Array.from({ length: topic.consumers }, (_, i) => ({ name: queue(topic, i), data })))
    return {
      send: async (_, payload) => {
        if (topic.consumers === 1) await instance.send(queue(topic, 0), payload)
        else await instance.publish(topic.name, payload)
      },
      sendBatch: (_, payloads) => instance.insert(jobs(payloads)),
      close: () => instance.stop({ graceful: false, wait: true })
    }
  },
  consume: async (url, topic, onHandled): Promise<Consumers> => {
    const instance = await boss(url, Math.min(40, topic.consumers * WORKERS_PER_QUEUE + 2))
    for (let i = 0; i < topic.consumers; i++) {
      for (let w = 0; w < WORKERS_PER_QUEUE; w++) {
        await instance.work<unknown>(queue(topic, i), { batchSize: BATCH_SIZE, pollingIntervalSeconds: 0.5 }, async (jobs) => {
          for (const job of jobs) onHandled(i, job.data)
        })
      }
    }
    return { stop: () => instance.stop({ graceful: true, wait: true, timeout: 10_000 }) }
  },
  createdAt: (url, topic) =>
    withClient(url, async (client) => {
      const { rows } = await client.query<{ seq: number; us: string }>(
        `SELECT (data->>'seq')::int AS seq, (extract(epoch FROM created_on) * 1e6)::bigint::text AS us
           FROM pgboss.job WHERE name LIKE $1`,
        [`${topic.name}\\_%`]
      )
      return createdAtBySeq(rows)
    })
}
