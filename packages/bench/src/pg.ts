import * as Pg from "pg"
import type { Producer } from "./system.js"

/** A connected bare client; the bench's own bookkeeping and the floor use these. */
export const connect = async (url: string, applicationName = "pgwatch-bench"): Promise<Pg.Client> => {
  const client = new Pg.Client({ connectionString: url, application_name: applicationName })
  await client.connect()
  return client
}

/** Runs `use` with a fresh client, closing it afterwards. */
export const withClient = async <A>(url: string, use: (client: Pg.Client) => Promise<A>): Promise<A> => {
  const client = await connect(url)
  try {
    return await use(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Maps seq -> created_at in wall-clock microseconds, from rows of (seq, epoch microseconds). */
export const createdAtBySeq = (rows: ReadonlyArray<{ readonly seq: number; readonly us: string }>) =>
  new Map(rows.map((row) => [row.seq, Number(row.us)]))

/**
 * A producer on `connections` bare clients: `one` takes ($1 channel, $2 a JSON payload) and
 * `many` ($1 channel, $2 a jsonb[] of payloads), each in a transaction of its own.
 */
export const bareProducer = async (
  url: string,
  channel: string,
  connections: number,
  applicationName: string,
  statements: { readonly one: string; readonly many: string }
): Promise<Producer> => {
  const clients = await Promise.all(Array.from({ length: connections }, () => connect(url, applicationName)))
  return {
    send: async (i, payload) => {
      await clients[i]!.query(statements.one, [channel, JSON.stringify(payload)])
    },
    sendBatch: async (i, payloads) => {
      await clients[i]!.query(statements.many, [channel, payloads.map((p) => JSON.stringify(p))])
    },
    close: async () => {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)))
    }
  }
}
