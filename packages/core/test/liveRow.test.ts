import { describe, expect, it } from "@effect/vitest"
import * as NodeCrypto from "node:crypto"
import * as LiveRow from "../src/internal/liveRow.js"

const key = NodeCrypto.randomBytes(32)
const channel = "orders"

/** A NOTIFY payload as sql/0009 sends it. */
const signed = (header: string, body: string, withKey: Uint8Array = key, forChannel = channel) =>
  `${header}:${LiveRow.sign(withKey, forChannel, header, body)}:${body}`

const invalid = (reason: string) => ({ _tag: "Invalid", reason })
const BAD_MAC = invalid("a live-row NOTIFY whose signature does not verify")

describe("liveRow.decode", () => {
  it("reads a row, a row without its payload and a read-xid", () => {
    const body = '{"note": "a: b:c", "n": 1}'
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:r:42:1234:1700000000123456", body), "app", key)).toEqual({
      _tag: "Row",
      id: 42n,
      xid: "1234",
      createdAt: new Date(1700000000123),
      body
    })
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:i:9007199254740993:5:0", ""), "app", key)).toEqual({
      _tag: "Row",
      id: 9007199254740993n,
      xid: "5",
      createdAt: new Date(0),
      body: undefined
    })
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:x:0:77:0", ""), "app", key)).toEqual({ _tag: "ReadXid", xid: "77" })
  })

  it("signs like the SQL producers: HMAC-SHA256 of `<channel>:<header>:<body>` as UTF-8", () => {
    // HMAC by its definition, with the zero-padded key and the 0x36/0x5c pads sql/0009 stores.
    const padded = Buffer.concat([key, Buffer.alloc(32)])
    const pad = (byte: number) => Buffer.from(padded.map((b) => b ^ byte))
    const message = Buffer.from(`${channel}:pgwatch:2:app:r:1:2:3:"é"`, "utf8")
    const inner = NodeCrypto.createHash("sha256").update(Buffer.concat([pad(0x36), message])).digest()
    const outer = NodeCrypto.createHash("sha256").update(Buffer.concat([pad(0x5c), inner])).digest("hex")
    expect(LiveRow.sign(key, channel, "pgwatch:2:app:r:1:2:3", '"é"')).toBe(outer)
  })

  it("rejects anything that is not signed with the key, for this channel, as it is", () => {
    const genuine = signed("pgwatch:2:app:r:42:1234:1700000000123456", '{"amount": 10}')
    expect(LiveRow.decode(channel, genuine.replace("10}", "99}"), "app", key)).toEqual(BAD_MAC)
    expect(LiveRow.decode(channel, genuine.replace(":42:", ":43:"), "app", key)).toEqual(BAD_MAC)
    expect(LiveRow.decode(channel, genuine.replace(":r:", ":i:"), "app", key)).toEqual(BAD_MAC)
    expect(LiveRow.decode("payments", genuine, "app", key)).toEqual(BAD_MAC)
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:r:42:1234:0", "{}", NodeCrypto.randomBytes(32)), "app", key))
      .toEqual(BAD_MAC)
    expect(LiveRow.decode(channel, `pgwatch:2:app:r:42:1234:0:${"0".repeat(64)}:{}`, "app", key)).toEqual(BAD_MAC)
    expect(LiveRow.decode(channel, "pgwatch:2:app:r:42:1234:0:nope:{}", "app", key))
      .toEqual(invalid("a live-row NOTIFY without a signature"))
    expect(LiveRow.decode(channel, "pgwatch:2:app:r:42", "app", key)).toEqual(invalid("a malformed live-row NOTIFY"))
  })

  it("tells another schema's rows apart, and checks the fields of a signed one", () => {
    expect(LiveRow.decode(channel, signed("pgwatch:2:other:r:1:2:3", "{}"), "app", key)).toEqual({ _tag: "OtherSchema" })
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:r:-1:2:3", "{}"), "app", key))
      .toEqual(invalid("a signed live-row NOTIFY with malformed fields"))
    // An xid8 past its range would make the consumer's position impossible to save.
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:r:1:18446744073709551616:3", "{}"), "app", key))
      .toEqual(invalid("a signed live-row NOTIFY with malformed fields"))
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:r:1:18446744073709551615:3", "{}"), "app", key)._tag)
      .toBe("Row")
    expect(LiveRow.decode(channel, signed("pgwatch:2:app:q:1:2:3", ""), "app", key))
      .toEqual(invalid(`a signed live-row NOTIFY of unknown kind "q"`))
  })

  it("isLive: only the live-row prefix", () => {
    expect(LiveRow.isLive("pgwatch:2:app:r:1:2:3:m:{}")).toBe(true)
    expect(LiveRow.isLive(`{"pgwatch":1,"schema":"app"}`)).toBe(false)
  })
})
