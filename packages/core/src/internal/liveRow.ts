import * as NodeCrypto from "node:crypto"

/**
 * Live rows: the NOTIFY a producer sends per log row while a consumer waits on its channel
 * (sql/0009). Any role can NOTIFY any channel, so a row is believed only when its signature
 * verifies: HMAC-SHA256, keyed by the installation's secret, over the channel and everything
 * before the signature.
 *
 *   pgwatch:2:<schema>:<kind>:<id>:<xid>:<created_at µs>:<hmac hex>:<body>
 *
 * - kind `r`: a row, body = its payload as jsonb text;
 * - kind `i`: a row without its payload (too big for a NOTIFY, or a confidential channel):
 *   body empty, the reader fetches it by id;
 * - kind `x`: "read transaction <xid>": it wrote more rows on the channel than are sent one by
 *   one; id and created_at are 0, body empty.
 *
 * The MAC is over `<channel>:pgwatch:2:<schema>:<kind>:<id>:<xid>:<created_at µs>:<body>`,
 * as UTF-8.
 */
export const PREFIX = "pgwatch:2:"

export type Decoded =
  | {
    readonly _tag: "Row"
    readonly id: bigint
    readonly xid: string
    readonly createdAt: Date
    /** The payload as JSON text; undefined when it was left out (fetch the row by id). */
    readonly body: string | undefined
  }
  | { readonly _tag: "ReadXid"; readonly xid: string }
  /** A signed NOTIFY of another pgwatch schema in the same database: not ours, not an attack. */
  | { readonly _tag: "OtherSchema" }
  | { readonly _tag: "Invalid"; readonly reason: string }

/** Whether a NOTIFY payload claims to be a live row (of any schema). */
export const isLive = (payload: string): boolean => payload.startsWith(PREFIX)

/** A bigint (id, created_at µs) and an xid8 as PostgreSQL writes them: no more digits than they hold. */
const BIGINT = /^[0-9]{1,19}$/
const XID8 = /^[0-9]{1,20}$/
const XID8_MAX = 18446744073709551615n

/** Splits off the first `count` colon-separated fields; the rest is the last element. */
const fields = (text: string, count: number): Array<string> | undefined => {
  const out: Array<string> = []
  let from = 0
  for (let i = 0; i < count; i++) {
    const at = text.indexOf(":", from)
    if (at < 0) return undefined
    out.push(text.slice(from, at))
    from = at + 1
  }
  out.push(text.slice(from))
  return out
}

/** The MAC a producer with this key computes for a payload without its signature field. */
export const sign = (key: Uint8Array, channel: string, header: string, body: string): string =>
  NodeCrypto.createHmac("sha256", key).update(`${channel}:${header}:${body}`, "utf8").digest("hex")

/**
 * Reads and verifies a live-row NOTIFY (`isLive(payload)` holds) for `schema`, whose key is
 * `key`. Nothing here is trusted until the signature verifies.
 */
export const decode = (channel: string, payload: string, schema: string, key: Uint8Array): Decoded => {
  // pgwatch : 2 : schema : kind : id : xid : created : mac : body
  const parts = fields(payload, 8)
  if (parts === undefined) return { _tag: "Invalid", reason: "a malformed live-row NOTIFY" }
  const [, , from, kind, id, xid, created, mac, body] = parts as [
    string, string, string, string, string, string, string, string, string
  ]
  if (from !== schema) return { _tag: "OtherSchema" }
  if (!/^[0-9a-f]{64}$/.test(mac)) return { _tag: "Invalid", reason: "a live-row NOTIFY without a signature" }
  const header = payload.slice(0, payload.length - body.length - mac.length - 2)
  const expected = Buffer.from(sign(key, channel, header, body), "hex")
  if (!NodeCrypto.timingSafeEqual(expected, Buffer.from(mac, "hex"))) {
    return { _tag: "Invalid", reason: "a live-row NOTIFY whose signature does not verify" }
  }
  if (!BIGINT.test(id) || !BIGINT.test(created) || !XID8.test(xid) || BigInt(xid) > XID8_MAX) {
    return { _tag: "Invalid", reason: "a signed live-row NOTIFY with malformed fields" }
  }
  switch (kind) {
    case "r":
    case "i":
      return {
        _tag: "Row",
        id: BigInt(id),
        xid,
        createdAt: new Date(Number(BigInt(created) / 1000n)),
        body: kind === "r" ? body : undefined
      }
    case "x":
      return { _tag: "ReadXid", xid }
    default:
      return { _tag: "Invalid", reason: `a signed live-row NOTIFY of unknown kind "${kind}"` }
  }
}
