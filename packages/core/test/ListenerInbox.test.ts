import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import * as Inbox from "../src/internal/inbox.js"
import type { ListenerEvent } from "../src/internal/listener.js"

const row = (id: number): ListenerEvent => ({
  _tag: "Row",
  channel: "c",
  id: BigInt(id),
  xid: "1",
  createdAt: new Date(0),
  payload: Option.none(),
  fanOut: 1
})
const tags = (events: ReadonlyArray<ListenerEvent>) => events.map((event) => event._tag)

describe("a subscriber's inbox", () => {
  it.effect("rows beyond the bound are dropped behind one Overflow, and taking them makes room again", () =>
    Effect.gen(function*() {
      const inbox = Inbox.make(3)
      for (let i = 1; i <= 10; i++) inbox.offer(row(i))
      inbox.offer({ _tag: "ReadXid", channel: "c", xid: "7" })
      expect(tags(yield* inbox.takeAll)).toEqual(["Row", "Row", "Row", "Overflow"])

      // Taken one by one: each take gives its room back.
      for (let i = 11; i <= 13; i++) inbox.offer(row(i))
      expect((yield* inbox.take)._tag).toBe("Row")
      inbox.offer(row(14))
      inbox.offer(row(15))
      expect((yield* inbox.takeAll).map((event) => event._tag === "Row" ? event.id : undefined)).toEqual([12n, 13n, 14n, undefined])
    }))

  it.effect("an Overflow not yet taken refuses every later row, even once rows before it are taken", () =>
    Effect.gen(function*() {
      const inbox = Inbox.make(2)
      for (let i = 1; i <= 3; i++) inbox.offer(row(i))
      expect((yield* inbox.take)._tag).toBe("Row")
      inbox.offer(row(4))
      expect(tags(yield* inbox.takeAll)).toEqual(["Row", "Overflow"])
      inbox.offer(row(5))
      expect(tags(yield* inbox.takeAll)).toEqual(["Row"])
    }))

  it.effect("Listening and Lost are kept, in order, whatever the rows and wake-ups around them", () =>
    Effect.gen(function*() {
      const inbox = Inbox.make(100)
      for (let i = 0; i < 10_000; i++) {
        inbox.offer(row(i))
        inbox.offer({ _tag: "Wake", channel: `c${i % 3}`, redelivery: i % 2 === 0 })
        if (i === 5000) inbox.offer({ _tag: "Lost", reason: "killed" })
        if (i === 6000) inbox.offer({ _tag: "Listening", pid: 2 })
      }
      const events = yield* inbox.takeAll
      expect(tags(events).filter((tag) => tag === "Lost" || tag === "Listening")).toEqual(["Lost", "Listening"])
      expect(tags(events).filter((tag) => tag === "Row")).toHaveLength(100)
      expect(tags(events).filter((tag) => tag === "Overflow")).toHaveLength(1)
      // One pending wake-up per channel and kind: 3 channels × (redelivery or not).
      expect(events.filter((event) => event._tag === "Wake")).toHaveLength(6)
    }))

  it.effect("a wake-up is coalesced only while the same one is pending", () =>
    Effect.gen(function*() {
      const inbox = Inbox.make(10)
      inbox.offer({ _tag: "Wake", channel: "a", redelivery: false })
      inbox.offer({ _tag: "Wake", channel: "a", redelivery: false })
      inbox.offer({ _tag: "Wake", channel: "a", redelivery: true })
      expect(yield* inbox.takeAll).toEqual([
        { _tag: "Wake", channel: "a", redelivery: false },
        { _tag: "Wake", channel: "a", redelivery: true }
      ])
      inbox.offer({ _tag: "Wake", channel: "a", redelivery: false })
      expect(yield* inbox.takeAll).toHaveLength(1)
    }))

  it.effect("waitPending returns once an event is pending and takes nothing", () =>
    Effect.gen(function*() {
      const inbox = Inbox.make(10)
      const waiting = yield* Effect.fork(inbox.waitPending)
      yield* Effect.yieldNow()
      expect(waiting.unsafePoll()).toBeNull()
      inbox.offer({ _tag: "Lost", reason: "x" })
      yield* Fiber.join(waiting)
      expect(tags(yield* inbox.takeAll)).toEqual(["Lost"])
      const taking = yield* Effect.fork(inbox.take)
      inbox.offer({ _tag: "Listening", pid: 1 })
      expect(yield* Fiber.join(taking)).toEqual({ _tag: "Listening", pid: 1 })
    }))
})
