import * as LiveRow from "../src/internal/liveRow.js"

/** A live-row NOTIFY payload signed with `key`, as sql/0009 sends it (or forges one, with another key). */
export const livePayload = (
  key: Uint8Array,
  channel: string,
  schema: string,
  row: { readonly kind?: "r" | "i" | "x"; readonly id: number; readonly xid?: string; readonly body?: string }
) => {
  const body = row.body ?? ""
  const header = `${LiveRow.PREFIX}${schema}:${row.kind ?? "r"}:${row.id}:${row.xid ?? "1000"}:1700000000000000`
  return `${header}:${LiveRow.sign(key, channel, header, body)}:${body}`
}
