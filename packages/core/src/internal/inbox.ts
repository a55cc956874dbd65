import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { ListenerEvent, Subscription } from "./listener.js"

/**
 * One subscriber's pending listener events: a single ordered buffer, unbounded in type, whose
 * size the listener bounds by what it lets in.
 *
 * - `Listening` / `Lost` always go in: they are rare (one per connection attempt) and a lost
 *   one leaves a reader believing the wrong thing about its wake-ups.
 * - `Row` / `ReadXid` go in while fewer than `maxPendingRows` of them are pending. The first
 *   one refused queues one `Overflow` in its place, and every later one is refused until the
 *   subscriber has taken that `Overflow`: it then reads the log from its position, and that
 *   read (its snapshot taken after the take) covers every row refused meanwhile.
 * - `Wake` goes in unless the same wake-up (channel, redelivery) is already pending: the
 *   pending one makes the reader read the log after this NOTIFY's commit anyway.
 *
 * So at most `maxPendingRows` + 1 + 2 × channels + the connection events are pending, and the
 * counts are given back as events are taken.
 */
export interface Inbox extends Omit<Subscription, "offer"> {
  /** Queues an event under the rules above (synchronous, for the listener's routing). */
  readonly offer: (event: ListenerEvent) => void
}

const OVERFLOW: ListenerEvent = { _tag: "Overflow" }

const wakeKey = (event: { readonly channel: string; readonly redelivery: boolean }) =>
  `${event.redelivery ? "r" : "w"}:${event.channel}`

/** An empty inbox that holds at most `maxPendingRows` rows (`Row` and `ReadXid` events). */
export const make = (maxPendingRows: number): Inbox => {
  let events: Array<ListenerEvent> = []
  // Events before `head` have been taken (compacted when the buffer empties or runs long).
  let head = 0
  let rows = 0
  let overflowQueued = false
  const wakes = new Set<string>()
  let waiter: Deferred.Deferred<void> | undefined

  const push = (event: ListenerEvent) => {
    events.push(event)
    if (waiter !== undefined) {
      const woken = waiter
      waiter = undefined
      Deferred.unsafeDone(woken, Exit.void)
    }
  }

  const offer = (event: ListenerEvent) => {
    switch (event._tag) {
      case "Row":
      case "ReadXid":
        if (overflowQueued) return
        if (rows >= maxPendingRows) {
          overflowQueued = true
          return push(OVERFLOW)
        }
        rows += 1
        return push(event)
      case "Wake": {
        const key = wakeKey(event)
        if (wakes.has(key)) return
        wakes.add(key)
        return push(event)
      }
      default:
        return push(event)
    }
  }

  // What taking an event gives back.
  const taken = (event: ListenerEvent) => {
    switch (event._tag) {
      case "Row":
      case "ReadXid":
        rows -= 1
        break
      case "Overflow":
        overflowQueued = false
        break
      case "Wake":
        wakes.delete(wakeKey(event))
    }
  }

  const takeAll = Effect.sync(() => {
    const out = head === 0 ? events : events.slice(head)
    events = []
    head = 0
    out.forEach(taken)
    return out as ReadonlyArray<ListenerEvent>
  })

  const waitPending = Effect.suspend(() => {
    if (head < events.length) return Effect.void
    waiter ??= Deferred.unsafeMake<void>(FiberId.none)
    return Deferred.await(waiter)
  })

  const take: Effect.Effect<ListenerEvent> = Effect.suspend(() => {
    if (head === events.length) return Effect.zipRight(waitPending, take)
    const event = events[head]!
    head += 1
    if (head === events.length || head > 1024) {
      events = events.slice(head)
      head = 0
    }
    taken(event)
    return Effect.succeed(event)
  })

  return { offer, take, takeAll, waitPending }
}
