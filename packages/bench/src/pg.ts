import * as Pg from "pg"

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
