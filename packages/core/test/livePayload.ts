// Live-row test helpers: signed payloads, and waiting for a listener event.
import { Effect } from "effect"
import type * as Listener from "../src/internal/listener.js"
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

/** Takes events until one with the tag comes. */
export const next = <T extends Listener.ListenerEvent["_tag"]>(events: Listener.Subscription, tag: T) =>
  Effect.gen(function*() {
    for (;;) {
      const event = yield* events.take
      if (event._tag === tag) return event as Extract<Listener.ListenerEvent, { readonly _tag: T }>
    }
  }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`no ${tag} event`) }))
