import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import * as Cursor from "../src/internal/cursor.js"
import type { ListenerEvent } from "../src/internal/listener.js"
import type { PageRow } from "../src/internal/pages.js"
import * as ReaderState from "../src/internal/readerState.js"
import * as Snapshot from "../src/internal/snapshot.js"

// The reader's decisions, without a database: what it reads, when it waits, what it drops.
const settings: ReaderState.Settings = {
  pageSize: 3,
  pollInterval: 5000,
  fallbackPollInterval: 250,
  busyReadInterval: 25,
  keepUpRate: ReaderState.KEEP_UP_RATE
}

const row = (id: number, xid: string, payload: unknown = id): PageRow => ({
  id: BigInt(id),
  channel: "ch",
  payload,
  createdAt: new Date(0),
  xid
})

const liveRow = (id: number, xid: string, payload: Option.Option<unknown> = Option.some(id)): ListenerEvent => ({
  _tag: "Row",
  channel: "ch",
  id: BigInt(id),
  xid,
  createdAt: new Date(0),
  payload,
  fanOut: 1
})

const event = (state: ReaderState.State, e: ListenerEvent, now = 0) =>
  ReaderState.step(state, { _tag: "Event", event: e, now })

const page = (state: ReaderState.State, rows: ReadonlyArray<PageRow>, batch: string, complete: boolean, now = 0) =>
  ReaderState.step(state, { _tag: "Page", page: { rows, batch, complete }, now })

/** Plans until the next action that is not the redelivery read, and checks it reads a page. */
const readPage = (state: ReaderState.State, now = 0) => {
  let planned = ReaderState.plan(state, now)
  if (planned.action._tag === "ReadRedeliveries") planned = ReaderState.plan(planned.state, now)
  expect(planned.action._tag).toBe("ReadPage")
  return planned.state
}

const ids = (deliveries: ReadonlyArray<ReaderState.Delivery>) => deliveries.map((d) => Number(d.id))
const cursorOf = (d: ReaderState.Delivery) => Option.getOrThrow(d.cursor)

/** A reader listening (pid 7), registered, suspects settled, caught up at done = 100:100:. */
const live = (done = "100:100:") => {
  let s = ReaderState.make(settings, Cursor.between("90:90:"))
  s = event(s, { _tag: "Listening", pid: 7 }).state
  s = readPage(s)
  const first = page(s, [], done, true)
  expect(first.commands).toEqual([{ _tag: "Register", pid: 7 }])
  s = readPage(first.state)
  s = page(s, [], done, true).state
  expect(ReaderState.isLive(s)).toBe(true)
  return s
}

describe("reader state: registering in the middle of a batch", () => {
  it("goes live only after a batch whose snapshot follows the registration", () => {
    let s = ReaderState.make(settings, Cursor.between("90:90:"))
    s = event(s, { _tag: "Listening", pid: 7 }).state
    s = readPage(s)
    // A page that delivers nothing but does not end its batch (its rows were skipped): the
    // reader registers, while its batch snapshot (100:100:) predates the registration.
    const first = page(s, [], "100:100:", false)
    expect(first.commands).toEqual([{ _tag: "Register", pid: 7 }])
    s = readPage(first.state)
    // The old batch completes with nothing in progress: that proves nothing about writers that
    // got their xid after it and wrote before the registration committed (xid 105 here).
    s = page(s, [], "100:100:", true).state
    expect(ReaderState.isLive(s)).toBe(false)
    const wake = event(s, liveRow(21, "105"))
    expect(wake.deliveries).toEqual([])
    // A batch taken after the registration finds 105's rows and settles.
    s = readPage(wake.state)
    const fresh = page(s, [row(20, "105"), row(21, "105")], "110:110:", true)
    expect(ids(fresh.deliveries)).toEqual([20, 21])
    expect(ReaderState.isLive(fresh.state)).toBe(true)
  })
})

describe("reader state: playback", () => {
  it("reads redeliveries, then pages through a backlog without waiting, flagging replays", () => {
    const s0 = ReaderState.make(settings, Cursor.between("1:1:"))
    const first = ReaderState.plan(s0, 0)
    expect(first.action).toEqual({ _tag: "ReadRedeliveries" })
    expect(first.commands).toEqual([{ _tag: "WriteMode", mode: "polling" }])
    const second = ReaderState.plan(first.state, 0)
    expect(second.action).toEqual({ _tag: "ReadPage", cursor: Cursor.between("1:1:") })
    const { deliveries, state } = page(second.state, [row(1, "5"), row(2, "5"), row(3, "6")], "1:10:", false)
    expect(ids(deliveries)).toEqual([1, 2, 3])
    expect(deliveries.every((d) => d.isReplay)).toBe(true)
    expect(cursorOf(deliveries[2]!)).toMatchObject({ done: "1:1:", batch: "1:10:", afterXid: "6", afterId: "3" })
    // An incomplete page: the next is read at once, from where this one stopped.
    const next = ReaderState.plan(state, 0)
    expect(next.action).toEqual({ _tag: "ReadPage", cursor: state.cursor })
  })

  it("the last row of a complete batch carries the cursor between batches", () => {
    const s = readPage(ReaderState.make(settings, Cursor.between("1:1:")))
    const { deliveries, state } = page(s, [row(1, "5")], "1:10:", true)
    expect(cursorOf(deliveries[0]!)).toEqual(Cursor.between("1:10:"))
    expect(state.cursor).toEqual(Cursor.between("1:10:"))
  })

  it("without a listen connection it never registers and polls at the fallback interval", () => {
    const s = readPage(ReaderState.make(settings, Cursor.between("1:1:")))
    const after = page(s, [], "1:10:", true, 1000)
    expect(after.commands).toEqual([])
    expect(ReaderState.plan(after.state, 1000).action).toEqual({ _tag: "Wait", until: 1250, events: true })
  })

  it("stops flagging replays once a batch that began while listening completes", () => {
    let s = ReaderState.make(settings, Cursor.between("1:1:"))
    s = readPage(s)
    s = page(s, [row(1, "5")], "1:10:", true).state
    expect(s.replaying).toBe(true)
    s = event(s, { _tag: "Listening", pid: 7 }).state
    s = readPage(s)
    s = page(s, [row(2, "11")], "1:12:", true).state
    expect(s.replaying).toBe(false)
  })

  it("after a lost connection, what was written meanwhile is a replay again", () => {
    let s = live()
    s = event(s, { _tag: "Lost", reason: "gone" }).state
    expect(ReaderState.isLive(s)).toBe(false)
    const polling = ReaderState.plan(s, 0)
    expect(polling.commands).toEqual([{ _tag: "WriteMode", mode: "polling" }])
    s = event(polling.state, { _tag: "Listening", pid: 8 }).state
    expect(s.replaying).toBe(true)
    expect(ReaderState.plan(s, 0).commands).toEqual([{ _tag: "WriteMode", mode: "wake-ups" }])
  })
})

describe("reader state: the listen connection", () => {
  it("after Lost, a caught-up reader polls at the fallback interval and live rows stop", () => {
    let s = live()
    s = event(s, { _tag: "Lost", reason: "gone" }, 10).state
    s = readPage(s, 10)
    const after = page(s, [], "100:100:", true, 10)
    expect(after.commands).toEqual([])
    expect(ReaderState.plan(after.state, 10).action).toEqual({ _tag: "Wait", until: 260, events: true })
    expect(event(after.state, liveRow(50, "120"), 20).deliveries).toEqual([])
  })

  it("a new listen connection registers again under its pid, and is live only after a batch read since", () => {
    let s = live()
    s = event(s, { _tag: "Listening", pid: 9 }).state
    expect(ReaderState.isLive(s)).toBe(false)
    s = readPage(s)
    const registering = page(s, [], "100:100:", true)
    expect(registering.commands).toEqual([{ _tag: "Register", pid: 9 }])
    s = readPage(registering.state)
    s = page(s, [], "100:100:", true).state
    expect(ReaderState.isLive(s)).toBe(true)
  })
})

describe("reader state: registration and suspects", () => {
  it("registers once caught up, then re-reads on a doubling delay until the suspects finish", () => {
    let s = ReaderState.make(settings, Cursor.between("1:1:"))
    s = event(s, { _tag: "Listening", pid: 7 }).state
    s = readPage(s)
    const registered = page(s, [], "10:10:", true)
    expect(registered.commands).toEqual([{ _tag: "Register", pid: 7 }])
    s = readPage(registered.state)
    // Transactions 10 and 12 were running when the registration committed.
    s = page(s, [], "10:13:10,12", true, 100).state
    expect(ReaderState.plan(s, 100).action).toEqual({ _tag: "Wait", until: 101, events: true })
    s = readPage(s, 101)
    s = page(s, [], "12:14:12,13", true, 101).state
    expect([...s.suspects!]).toEqual(["12"])
    expect(ReaderState.plan(s, 101).action).toEqual({ _tag: "Wait", until: 103, events: true })
    expect(ReaderState.isLive(s)).toBe(false)
    s = readPage(s, 103)
    s = page(s, [], "13:14:13", true, 103).state
    // 13 began after the registration: not a suspect. Settled: wait the poll interval.
    expect(ReaderState.plan(s, 103).action).toEqual({ _tag: "Wait", until: 5103, events: true })
    expect(ReaderState.isLive(s)).toBe(true)
  })

  it("a wake-up ends the wait and reads at once", () => {
    const s = live()
    const woken = event(s, { _tag: "Wake", channel: "ch", redelivery: true }, 10)
    expect(ReaderState.plan(woken.state, 10).action).toEqual({ _tag: "ReadRedeliveries" })
  })

  it("redeliveries are looked for once per poll interval", () => {
    let planned = ReaderState.plan(ReaderState.make(settings, Cursor.between("1:1:")), 0)
    expect(planned.action._tag).toBe("ReadRedeliveries")
    planned = ReaderState.plan(planned.state, 4999)
    expect(planned.action._tag).toBe("ReadPage")
    let s = page(planned.state, [row(1, "2")], "1:3:", false, 4999).state
    expect(ReaderState.plan(s, 5000).action._tag).toBe("ReadRedeliveries")
    s = ReaderState.plan(s, 5000).state
    expect(ReaderState.plan(s, 5000).action._tag).toBe("ReadPage")
  })
})

describe("reader state: live rows", () => {
  it("delivers a live row once caught up, growing the live set in the cursor", () => {
    const s = live()
    const { deliveries, state } = event(s, liveRow(50, "120"))
    expect(ids(deliveries)).toEqual([50])
    expect(deliveries[0]!.isReplay).toBe(false)
    expect(cursorOf(deliveries[0]!)).toEqual({ ...Cursor.between("100:100:"), live: ["120"], liveAfterId: "50" })
    // No read: it keeps waiting for the poll timer.
    expect(ReaderState.plan(state, 1).action).toEqual({ _tag: "Wait", until: 5000, events: true })
  })

  it("drops a row visible in done, a replayed one, and one of a transaction delivered before", () => {
    let s = live()
    expect(event(s, liveRow(40, "99")).deliveries).toEqual([])
    s = event(s, liveRow(50, "120")).state
    s = event(s, liveRow(51, "120")).state
    expect(event(s, liveRow(50, "120")).deliveries).toEqual([])
    expect(event(s, liveRow(51, "120")).deliveries).toEqual([])
    s = event(s, liveRow(60, "121")).state
    expect(s.cursor.live).toEqual(["120", "121"])
    // 120 is fully delivered (121 came after it): any row of it is a duplicate.
    expect(event(s, liveRow(52, "120")).deliveries).toEqual([])
    expect(ids(event(s, liveRow(61, "121")).deliveries)).toEqual([61])
  })

  it("drops a live row visible in the batch being paged through (the pages deliver it)", () => {
    let s = live()
    s = event(s, { _tag: "Wake", channel: "ch", redelivery: false }).state
    s = readPage(s)
    s = page(s, [row(70, "130")], "100:135:", false).state
    expect(event(s, liveRow(71, "131")).deliveries).toEqual([])
    expect(ids(event(s, liveRow(80, "140")).deliveries)).toEqual([80])
  })

  it("outside live mode a live row is a wake-up", () => {
    let s = ReaderState.make(settings, Cursor.between("1:1:"))
    s = readPage(s)
    s = page(s, [], "1:10:", true, 0).state
    const woken = event(s, liveRow(5, "12"), 10)
    expect(woken.deliveries).toEqual([])
    expect(ReaderState.plan(woken.state, 10).action._tag).toBe("ReadPage")
  })

  it("a live row without its payload is fetched by id; one deleted meanwhile is simply absent", () => {
    let s = live()
    const asked = event(s, liveRow(50, "120", Option.none()))
    expect(asked.deliveries).toEqual([])
    expect(ReaderState.plan(asked.state, 0).action).toEqual({
      _tag: "Fetch",
      fetch: { xid: "120", afterId: 49n, untilId: 50n }
    })
    const gone = ReaderState.step(asked.state, { _tag: "Fetched", rows: [], now: 0 })
    expect(gone.deliveries).toEqual([])
    expect(ReaderState.plan(gone.state, 0).action._tag).toBe("Wait")
    const found = ReaderState.step(asked.state, { _tag: "Fetched", rows: [row(50, "120", "big")], now: 0 })
    expect(found.deliveries.map((d) => d.payload)).toEqual(["big"])
    s = found.state
    expect(s.cursor.live).toEqual(["120"])
  })

  it("a read-xid reads that transaction's rows after the last delivered, a page at a time", () => {
    let s = live()
    s = event(s, liveRow(50, "120")).state
    s = event(s, { _tag: "ReadXid", channel: "ch", xid: "120" }).state
    expect(ReaderState.plan(s, 0).action).toEqual({ _tag: "Fetch", fetch: { xid: "120", afterId: 50n, untilId: undefined } })
    const full = ReaderState.step(s, { _tag: "Fetched", rows: [row(51, "120"), row(52, "120"), row(53, "120")], now: 0 })
    expect(ids(full.deliveries)).toEqual([51, 52, 53])
    expect(ReaderState.plan(full.state, 0).action).toEqual({
      _tag: "Fetch",
      fetch: { xid: "120", afterId: 53n, untilId: undefined }
    })
    const rest = ReaderState.step(full.state, { _tag: "Fetched", rows: [row(54, "120")], now: 0 })
    expect(ids(rest.deliveries)).toEqual([54])
    expect(rest.state.fetching).toBeUndefined()
    expect(rest.state.cursor.liveAfterId).toBe("54")
    // A read-xid for a transaction in done, or fully delivered, reads nothing.
    expect(event(rest.state, { _tag: "ReadXid", channel: "ch", xid: "99" }).state.fetching).toBeUndefined()
  })

  it("a backfill page skips rows delivered live and the complete batch prunes the live set", () => {
    let s = live()
    s = event(s, liveRow(50, "120")).state
    s = event(s, liveRow(51, "121")).state
    s = event(s, liveRow(52, "122")).state
    s = readPage(s, 5000)
    // 119's NOTIFY was lost: only backfill finds it. 122 committed after the batch's snapshot.
    const { deliveries, state } = page(s, [row(49, "119"), row(50, "120"), row(51, "121")], "122:123:122", true, 5000)
    expect(ids(deliveries)).toEqual([49])
    expect(state.cursor).toEqual({ ...Cursor.between("122:123:122"), live: ["122"], liveAfterId: "52" })
    // Rows skipped at the end of a batch move no delivery's cursor: a restart from this
    // one re-reads them and skips them again.
    expect(cursorOf(deliveries[0]!)).toEqual({ ...s.cursor, batch: "122:123:122", afterXid: "119", afterId: "49" })
  })

  it("a page row of the last live transaction after liveAfterId is delivered", () => {
    let s = live()
    s = event(s, liveRow(50, "120")).state
    s = readPage(s, 5000)
    const { deliveries } = page(s, [row(50, "120"), row(51, "120")], "121:121:", true, 5000)
    expect(ids(deliveries)).toEqual([51])
  })

  it("after an overflow, live rows are wake-ups until a batch read after it completes", () => {
    let s = live()
    s = event(s, { _tag: "Overflow" }).state
    expect(ReaderState.isLive(s)).toBe(false)
    expect(event(s, liveRow(50, "120")).deliveries).toEqual([])
    s = readPage(s)
    s = page(s, [row(50, "120")], "121:121:", true).state
    expect(ReaderState.isLive(s)).toBe(true)
  })

  it("an overflow in the middle of a batch needs the next batch too", () => {
    let s = live()
    s = event(s, { _tag: "Wake", channel: "ch", redelivery: false }).state
    s = readPage(s)
    s = page(s, [row(50, "120"), row(51, "120"), row(52, "120")], "121:121:", false).state
    s = event(s, { _tag: "Overflow" }).state
    s = readPage(s)
    s = page(s, [], "121:121:", true).state
    expect(ReaderState.isLive(s)).toBe(false)
    expect(ReaderState.plan(s, 0).action._tag).toBe("ReadPage")
  })

  it("a live set at its bound is folded into done by a backfill read", () => {
    let s = live()
    for (let i = 0; i < ReaderState.LIVE_BOUND - 1; i++) s = event(s, liveRow(1000 + i, String(1000 + i)), i * 4).state
    expect(ReaderState.plan(s, 4000).action._tag).toBe("Wait")
    s = event(s, liveRow(5000, "5000"), 4000).state
    expect(ReaderState.plan(s, 4000).action._tag).toBe("ReadPage")
  })

  it("live transactions above the keep-up rate switch to polling; queued rows are wake-ups", () => {
    let s = live()
    let commands: ReadonlyArray<ReaderState.Command> = []
    // 2000 transactions/s, measured over the first 100 ms.
    for (let i = 0; i <= 200; i++) {
      const r = event(s, liveRow(1000 + i, String(1000 + i)), i / 2)
      s = r.state
      commands = [...commands, ...r.commands]
    }
    expect(commands).toContainEqual({ _tag: "Unregister" })
    expect(s.registered).toBe(false)
    expect(ReaderState.isLive(s)).toBe(false)
    // A busy pause, not cut short by events.
    const waiting = ReaderState.plan(s, 100)
    expect(waiting.action).toMatchObject({ _tag: "Wait", events: false })
    const during = event(s, liveRow(9000, "9000"), 100)
    expect(during.deliveries).toEqual([])
    expect(ReaderState.plan(during.state, 100).action).toEqual(waiting.action)
  })

  it("a slow live rate stays live", () => {
    let s = live()
    for (let i = 0; i < 50; i++) s = event(s, liveRow(1000 + i, String(1000 + i)), i * 10).state
    expect(s.registered).toBe(true)
    expect(ReaderState.isLive(s)).toBe(true)
  })

  it("polling, a quiet page after a busy pause registers again", () => {
    let s = live()
    for (let i = 0; i <= 200; i++) s = event(s, liveRow(1000 + i, String(1000 + i)), i / 2).state
    const pause = ReaderState.plan(s, 100)
    expect(pause.action._tag).toBe("Wait")
    s = readPage(pause.state, 200)
    // Fewer rows than a pause gathers at KEEP_UP_RATE (25 ms × 1000/s): the writers slowed.
    const quiet = page(s, [row(3000, "3000")], "3001:3001:", true, 200)
    expect(quiet.commands).toEqual([{ _tag: "Register", pid: 7 }])
  })

  it("a restart with a persisted live set skips those rows in playback", () => {
    const start: Cursor.Cursor = { ...Cursor.between("100:100:"), live: ["120", "121"], liveAfterId: "61" }
    let s = ReaderState.make(settings, start)
    s = readPage(s)
    const { deliveries, state } = page(
      s,
      [row(50, "120"), row(60, "121"), row(61, "121"), row(62, "121"), row(70, "125")],
      "130:130:",
      true
    )
    expect(ids(deliveries)).toEqual([62, 70])
    expect(state.cursor).toEqual(Cursor.between("130:130:"))
  })
})

describe("snapshot visibility (pg_visible_in_snapshot)", () => {
  it("below xmin: visible; from xmax on: not; between: unless in progress", () => {
    expect(Snapshot.isVisible("9", "10:20:12,15")).toBe(true)
    expect(Snapshot.isVisible("12", "10:20:12,15")).toBe(false)
    expect(Snapshot.isVisible("13", "10:20:12,15")).toBe(true)
    expect(Snapshot.isVisible("20", "10:20:12,15")).toBe(false)
    expect(Snapshot.isVisible("9007199254740993", "9007199254740993:9007199254740995:")).toBe(true)
    expect(Snapshot.isVisible("9007199254740995", "9007199254740993:9007199254740995:")).toBe(false)
  })
})
