/**
 * graphile-worker, with the configuration its performance page uses for its published figures
 * (https://worker.graphile.org/docs/performance): 24 concurrent jobs, a pool of 25, a local
 * queue of 500 and batched completion. Producers call `addJob` / `addJobs` (the `add_job(s)`
 * SQL functions, which always NOTIFY `jobs:insert`).
 *
 * It is a job queue: a job is done once, by one worker, then deleted. Fan-out has no native
 * form, so each of N consumers gets its own task identifier and the producer adds N jobs per
 * notification in one `addJobs` call (one transaction).
 */
import { Logger, makeWorkerUtils, run, runMigrations, type AddJobsJobSpec } from "graphile-worker"
import type { Payload } from "../payload.js"
import type { Consumers, Producer, System, Topic } from "../system.js"

const silent = new Logger(() => () => undefined)

const task = (topic: Topic, i: number) => `${topic.name}_${i}`

const specs = (topic: Topic, payloads: ReadonlyArray<Payload>): Array<AddJobsJobSpec> =>
  payloads.flatMap((payload) =>
    Array.from({ length: topic.consumers }, (_, i) => ({ identifier: task(topic, i), payload }))
  )

export const system: System = {
  name: "graphile-worker",
  label: "graphile-worker 0.18.0",
  skipsLateCommits: false,
  notes:
    "Job queue: each job runs once and is deleted; fan-out emulated with one job per consumer per notification. Configured as its performance docs: concurrentJobs 24, maxPoolSize 25, localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0. 0.18.0 declares Node >= 22.18; it ran here on Node 20.",
  setup: (url) => runMigrations({ connectionString: url, logger: silent }),
  prepare: async () => undefined,
  producer: async (url, topic, connections): Promise<Producer> => {
    const utils = await makeWorkerUtils({ connectionString: url, maxPoolSize: connections, logger: silent })
    return {
      send: async (_, payload) => {
        if (topic.consumers === 1) await utils.addJob(task(topic, 0), payload)
        else await utils.addJobs(specs(topic, [payload]))
      },
      sendBatch: async (_, payloads) => {
        await utils.addJobs(specs(topic, payloads))
      },
      close: async () => {
        await utils.release()
      }
    }
  },
  consume: async (url, topic, onHandled): Promise<Consumers> => {
    const taskList = Object.fromEntries(
      Array.from({ length: topic.consumers }, (_, i) => [task(topic, i), async (payload: unknown) => onHandled(i, payload)])
    )
    const runner = await run({
      taskList,
      noHandleSignals: true,
      logger: silent,
      preset: {
        worker: {
          connectionString: url,
          concurrentJobs: 24,
          maxPoolSize: 25,
          localQueue: { size: 500 },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0
        }
      }
    })
    return { stop: () => runner.stop() }
  }
}
