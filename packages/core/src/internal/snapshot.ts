/** Transaction ids in progress when a snapshot (text form `xmin:xmax:xip,...`) was taken. */
export const inProgress = (snapshot: string): ReadonlyArray<string> => {
  const list = snapshot.split(":")[2] ?? ""
  return list === "" ? [] : list.split(",")
}

/** A snapshot that sees no transaction at all: a cursor at the start of the log. */
export const beginning = "1:1:"

interface Parsed {
  readonly xmin: bigint
  readonly xmax: bigint
  readonly xip: ReadonlySet<string>
}

// The few snapshots a reader compares against (its `done` and batch), parsed once each.
const parsed = new Map<string, Parsed>()

const parse = (snapshot: string): Parsed => {
  let found = parsed.get(snapshot)
  if (found === undefined) {
    const [xmin = "0", xmax = "0"] = snapshot.split(":")
    found = { xmin: BigInt(xmin), xmax: BigInt(xmax), xip: new Set(inProgress(snapshot)) }
    if (parsed.size >= 64) parsed.clear()
    parsed.set(snapshot, found)
  }
  return found
}

/**
 * Whether a transaction's effects are visible in a snapshot: `pg_visible_in_snapshot` for a
 * committed transaction (below xmin: yes; from xmax on: no; between: unless in progress).
 */
export const isVisible = (xid: string, snapshot: string): boolean => {
  const { xip, xmax, xmin } = parse(snapshot)
  const x = BigInt(xid)
  return x < xmin || (x < xmax && !xip.has(xid))
}
