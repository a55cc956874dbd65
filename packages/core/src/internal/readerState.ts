import * as Option from "effect/Option"
import type { Notification } from "../Notification.js"
import * as Cursor from "./cursor.js"
import type { ListenerEvent } from "./listener.js"
import type { Page, PageRow } from "./pages.js"
import * as Snapshot from "./snapshot.js"

/**
 * A reader's decisions, without I/O: when to register as waiting, read a page, fetch a live
 * row, or wait and for how long; which rows are duplicates; where the cursor goes. The reader
 * (`reader.ts`) performs what `plan` asks, feeds each result back through `step`, and emits
 * the deliveries `step` returns. Times are Clock milliseconds passed in.
 *
 * Two paths reach the handler. Pages read the log from the cursor: playback at start, then
 * backfill (the poll timer, wake-ups, a reconnect, suspects, a lost live row). Live rows come
 * straight from verified NOTIFYs, but only in live mode: listening, registered as waiting,
 * suspects settled, and the last complete batch began after the listen connection was proven
 * and nothing was missed since. Then every transaction not visible in `done` reaches the
 * reader by NOTIFY, in commit order, which makes the merge exact: a live row is a duplicate
 * when its xid is visible in `done` or in the batch being paged through, or is in the live
 * set; a page row is skipped when it is in the live set. Outside live mode a live row is only
 * a wake-up.
 */

/** A notification plus what handling it moves: the cursor, or a redelivery request. */
export interface Delivery extends Notification<unknown> {
  /** The position right after this row; none for a redelivery. */
  readonly cursor: Option.Option<Cursor.Cursor>
  /** The request this answers, for a redelivery (by its log id and request time). */
  readonly redelivery: Option.Option<{ readonly logId: bigint; readonly requestedAt: string }>
}

/** How new rows reach a reader (`consumer.delivery_mode`, shown by `status`). */
export type DeliveryMode = "wake-ups" | "polling"

export interface Settings {
  readonly pageSize: number
  /** Milliseconds a caught-up reader waits without a wake-up before it looks again. */
  readonly pollInterval: number
  /** The same while no wake-ups can come (no proven listen connection). */
  readonly fallbackPollInterval: number
  /** The pause between partial pages while rows keep coming. */
  readonly busyReadInterval: number
  /** NOTIFYs/s above which the reader polls rather than asking writers to NOTIFY (KEEP_UP_RATE). */
  readonly keepUpRate: number
}

/** A live transaction's rows to read from the log: after `afterId`, up to `untilId` if set. */
export interface Fetch {
  readonly xid: string
  readonly afterId: bigint
  readonly untilId: bigint | undefined
}

/** A log row fetched for the live path. */
export type FetchedRow = PageRow

/** What the reader does next; its result is the next input. */
export type Action =
  | { readonly _tag: "ReadRedeliveries" }
  | { readonly _tag: "ReadPage"; readonly cursor: Cursor.Cursor }
  | { readonly _tag: "Fetch"; readonly fetch: Fetch }
  /** Until `until`, or (`events`) the first listener event. A busy pause takes no events. */
  | { readonly _tag: "Wait"; readonly until: number; readonly events: boolean }

/** Side effects to perform, in order, before the next action. */
export type Command =
  | { readonly _tag: "Register"; readonly pid: number }
  | { readonly _tag: "Unregister" }
  | { readonly _tag: "WriteMode"; readonly mode: DeliveryMode }

export type Input =
  | { readonly _tag: "Event"; readonly event: ListenerEvent; readonly now: number }
  | { readonly _tag: "Page"; readonly page: Page; readonly now: number }
  | { readonly _tag: "Fetched"; readonly rows: ReadonlyArray<FetchedRow>; readonly now: number }

/**
 * Below this rate (NOTIFYs/s on the reader's channels: wake-ups and live rows, at most ~100 per
 * commit) a NOTIFY per row is cheap for writers and gives the lowest latency; above it the
 * reader polls. A registered reader measures the rate by its wake-ups and live rows; a polling
 * one by the rows a busy pause gathers.
 */
export const KEEP_UP_RATE = 1000

/** The window over which a registered reader counts its wake-ups against that rate. */
export const RATE_WINDOW_MS = 100

/** A live set this long is folded into `done` by a backfill read. */
export const LIVE_BOUND = 1000

const SHORTEST_RECHECK = 1

export interface State {
  readonly settings: Settings
  readonly cursor: Cursor.Cursor
  /** Whether page rows are replays (written before the consumer was listening). */
  readonly replaying: boolean
  readonly listenPid: number | undefined
  readonly lostConnection: boolean
  /** Bumped whenever live rows may have been missed (listen connection, overflow). */
  readonly epoch: number
  /** Whether the batch being read began while listening, and in which epoch. */
  readonly batchListening: boolean
  readonly batchEpoch: number
  /**
   * Whether the batch being read took its snapshot after the waiting registration committed:
   * only such a batch can tell which transactions may have missed it (the suspects).
   */
  readonly batchRegistered: boolean
  /** The last complete batch began while listening, with nothing missed since. */
  readonly caughtUp: boolean
  readonly registered: boolean
  /** Transactions that may have missed the registration; undefined until a batch is read. */
  readonly suspects: ReadonlySet<string> | undefined
  readonly lastPageHadRows: boolean
  readonly windowStart: number
  /** NOTIFYs (wake-ups, live rows) in the current rate window. */
  readonly windowWakes: number
  readonly tooFrequent: boolean
  /** A wake-up came after the batch being paged through took its snapshot. */
  readonly wokenDuringBatch: boolean
  /** The wait under way (or just ended) is a busy pause; the next page measures the rate. */
  readonly pausedBusy: boolean
  readonly recheck: number
  /** When to read next (at once when not after now). */
  readonly wakeAt: number
  /** Whether the wait until `wakeAt` is a busy pause. */
  readonly busyPause: boolean
  readonly redeliveriesDueAt: number
  readonly deliveryMode: DeliveryMode
  readonly writtenMode: DeliveryMode | undefined
  /** Live work waiting on a read of the log; no other event is taken until it is done. */
  readonly fetching: Fetch | undefined
}

type Draft = { -readonly [K in keyof State]: State[K] }

/** A reader at `cursor`, listening on nothing yet, about to read. */
export const make = (settings: Settings, cursor: Cursor.Cursor): State => ({
  settings,
  cursor,
  replaying: true,
  listenPid: undefined,
  lostConnection: false,
  epoch: 0,
  batchListening: false,
  batchEpoch: -1,
  batchRegistered: false,
  caughtUp: false,
  registered: false,
  suspects: undefined,
  lastPageHadRows: false,
  windowStart: 0,
  windowWakes: 0,
  tooFrequent: false,
  wokenDuringBatch: false,
  pausedBusy: false,
  recheck: SHORTEST_RECHECK,
  wakeAt: 0,
  busyPause: false,
  redeliveriesDueAt: 0,
  deliveryMode: "polling",
  writtenMode: undefined,
  fetching: undefined
})

/** Whether a live row is delivered now (rather than taken as a wake-up). */
export const isLive = (state: State): boolean =>
  state.listenPid !== undefined && state.registered && state.caughtUp && state.suspects !== undefined &&
  state.suspects.size === 0

/** Whether a row of `xid` is already covered by the cursor's snapshots (`done`, the batch). */
const inSnapshots = (cursor: Cursor.Cursor, xid: string): boolean =>
  Snapshot.isVisible(xid, cursor.done) || (cursor.batch !== null && Snapshot.isVisible(xid, cursor.batch))

/** Whether a live row is a duplicate: in `done`, in the batch being read, or delivered live. */
export const isDuplicate = (cursor: Cursor.Cursor, xid: string, id: bigint): boolean =>
  inSnapshots(cursor, xid) || Cursor.deliveredLive(cursor, xid, id)

/** The cursor once `batch` is complete: `done` moves to it and the live set loses what it covers. */
export const completed = (cursor: Cursor.Cursor, batch: string): Cursor.Cursor => {
  const live = cursor.live.filter((xid) => !Snapshot.isVisible(xid, batch))
  return {
    done: batch,
    batch: null,
    afterXid: "0",
    afterId: "0",
    live,
    liveAfterId: live.length === 0 ? "0" : cursor.liveAfterId
  }
}

/** What to do next, and the commands to perform first. */
export const plan = (state: State, now: number): {
  readonly state: State
  readonly commands: ReadonlyArray<Command>
  readonly action: Action
} => {
  if (state.fetching !== undefined) return { state, commands: [], action: { _tag: "Fetch", fetch: state.fetching } }
  if (now < state.wakeAt) {
    return {
      state: state.busyPause === state.pausedBusy ? state : { ...state, pausedBusy: state.busyPause },
      commands: [],
      action: { _tag: "Wait", until: state.wakeAt, events: !state.busyPause }
    }
  }
  const s: Draft = { ...state, busyPause: false }
  const commands: Array<Command> = []
  if (s.writtenMode !== s.deliveryMode) {
    commands.push({ _tag: "WriteMode", mode: s.deliveryMode })
    s.writtenMode = s.deliveryMode
  }
  if (now >= s.redeliveriesDueAt) {
    s.redeliveriesDueAt = now + s.settings.pollInterval
    return { state: s, commands, action: { _tag: "ReadRedeliveries" } }
  }
  if (s.cursor.batch === null) {
    // This read takes a new snapshot, which covers every wake-up handled so far.
    s.batchListening = s.listenPid !== undefined
    s.batchEpoch = s.batchListening ? s.epoch : -1
    s.batchRegistered = s.registered
    s.wokenDuringBatch = false
  }
  return { state: s, commands, action: { _tag: "ReadPage", cursor: s.cursor } }
}

/** The result of an action or a listener event: the new state, commands, and what to deliver. */
export const step = (state: State, input: Input): {
  readonly state: State
  readonly commands: ReadonlyArray<Command>
  readonly deliveries: ReadonlyArray<Delivery>
} => {
  const s: Draft = { ...state }
  const commands: Array<Command> = []
  const deliveries: Array<Delivery> = []
  switch (input._tag) {
    case "Event":
      onEvent(s, input.event, input.now, commands, deliveries)
      break
    case "Page":
      onPage(s, input.page, input.now, commands, deliveries)
      break
    case "Fetched":
      onFetched(s, input.rows, input.now, commands, deliveries)
  }
  return { state: s, commands, deliveries }
}

const readNow = (s: Draft) => {
  s.wakeAt = 0
  s.busyPause = false
}

const wake = (s: Draft) => {
  s.windowWakes += 1
  s.wokenDuringBatch = true
  // A busy pause is not cut short: its events are handled after it.
  if (!s.busyPause) readNow(s)
}

/** Live delivery may have missed rows: none until a batch read after this completes. */
const breakLive = (s: Draft) => {
  s.epoch += 1
  s.caughtUp = false
}

const onEvent = (s: Draft, event: ListenerEvent, now: number, commands: Array<Command>, out: Array<Delivery>) => {
  switch (event._tag) {
    case "Listening":
      // After a lost connection, what was written meanwhile is played back as missed.
      if (s.lostConnection) s.replaying = true
      s.lostConnection = false
      s.listenPid = event.pid
      s.registered = false
      s.redeliveriesDueAt = 0
      s.deliveryMode = "wake-ups"
      breakLive(s)
      readNow(s)
      return
    case "Lost":
      s.lostConnection = true
      s.listenPid = undefined
      s.registered = false
      s.deliveryMode = "polling"
      breakLive(s)
      readNow(s)
      return
    case "Wake":
      if (event.redelivery) s.redeliveriesDueAt = 0
      wake(s)
      return
    case "Overflow":
      breakLive(s)
      s.wokenDuringBatch = true
      if (!s.busyPause) readNow(s)
      return
    case "Row":
    case "ReadXid": {
      // Each live NOTIFY counts against the keep-up rate: they, not commits, are what the
      // writers pay for and what the reader handles one by one; a row counts once for every
      // consumer of the process it went to, so that many consumers of one busy channel poll
      // (and share their page reads) rather than each handle every NOTIFY.
      if (!isLive(s)) return wake(s)
      s.windowWakes += event._tag === "Row" ? event.fanOut : 1
      if (event._tag === "ReadXid") {
        if (inSnapshots(s.cursor, event.xid)) return
        const last = s.cursor.live.at(-1)
        if (last !== event.xid && s.cursor.live.includes(event.xid)) return
        s.fetching = { xid: event.xid, afterId: last === event.xid ? BigInt(s.cursor.liveAfterId) : 0n, untilId: undefined }
        return
      }
      if (isDuplicate(s.cursor, event.xid, event.id)) return
      if (Option.isNone(event.payload)) {
        s.fetching = { xid: event.xid, afterId: event.id - 1n, untilId: event.id }
        return
      }
      deliverLive(s, { ...event, payload: event.payload.value }, out)
      measureLive(s, now, commands)
    }
  }
}

/** Hands on a live row that is not a duplicate; the cursor grows its live set. */
const deliverLive = (s: Draft, row: PageRow, out: Array<Delivery>) => {
  const live = s.cursor.live.at(-1) === row.xid ? s.cursor.live : [...s.cursor.live, row.xid]
  s.cursor = { ...s.cursor, live, liveAfterId: String(row.id) }
  out.push({
    id: row.id,
    channel: row.channel,
    payload: row.payload,
    createdAt: row.createdAt,
    isReplay: false,
    cursor: Option.some(s.cursor),
    redelivery: Option.none()
  })
  // A long live set is folded into `done` by a backfill read.
  if (live.length >= LIVE_BOUND) readNow(s)
}

/**
 * Live transactions come faster than KEEP_UP_RATE: stop asking writers to NOTIFY and read on
 * by polling. What is queued meanwhile is only wake-ups.
 */
const measureLive = (s: Draft, now: number, commands: Array<Command>) => {
  if (now - s.windowStart < RATE_WINDOW_MS) return
  const tooFrequent = (s.windowWakes * 1000) / (now - s.windowStart) > s.settings.keepUpRate
  s.windowStart = now
  s.windowWakes = 0
  if (tooFrequent) startPolling(s, now, commands)
}

const startPolling = (s: Draft, now: number, commands: Array<Command>) => {
  commands.push({ _tag: "Unregister" })
  s.registered = false
  s.tooFrequent = false
  s.wakeAt = now + s.settings.busyReadInterval
  s.busyPause = true
}

const onFetched = (s: Draft, rows: ReadonlyArray<FetchedRow>, now: number, commands: Array<Command>, out: Array<Delivery>) => {
  const fetch = s.fetching!
  for (const row of rows) if (!isDuplicate(s.cursor, row.xid, row.id)) deliverLive(s, row, out)
  // A transaction's rows are read a page at a time; a row fetched by id is read once.
  const more = fetch.untilId === undefined && rows.length === s.settings.pageSize
  s.fetching = more ? { xid: fetch.xid, afterId: rows.at(-1)!.id, untilId: undefined } : undefined
  if (out.length > 0) measureLive(s, now, commands)
}

const onPage = (s: Draft, page: Page, now: number, commands: Array<Command>, out: Array<Delivery>) => {
  const { batch, complete, rows } = page
  const before = s.cursor
  const end = completed(before, batch)
  rows.forEach((row, i) => {
    // Rows delivered live are handled already; the cursor still moves past them.
    if (Cursor.deliveredLive(before, row.xid, row.id)) return
    const after: Cursor.Cursor = complete && i === rows.length - 1
      ? end
      : { ...before, batch, afterXid: row.xid, afterId: String(row.id) }
    out.push({
      id: row.id,
      channel: row.channel,
      payload: row.payload,
      createdAt: row.createdAt,
      isReplay: s.replaying,
      cursor: Option.some(after),
      redelivery: Option.none()
    })
  })
  if (complete && s.batchListening) s.replaying = false
  if (complete) s.caughtUp = s.batchEpoch === s.epoch
  const lastRow = rows.at(-1)
  s.cursor = complete
    ? end
    : lastRow === undefined
    ? { ...before, batch }
    : { ...before, batch, afterXid: lastRow.xid, afterId: String(lastRow.id) }
  afterPage(s, out.length, complete, Snapshot.inProgress(batch), now, commands)
}

/** Decides how long to wait after a page, and keeps the waiting registration in step. */
const afterPage = (
  s: Draft,
  delivered: number,
  complete: boolean,
  inProgress: ReadonlyArray<string>,
  now: number,
  commands: Array<Command>
) => {
  const { settings } = s
  // A batch begun before the registration (it registered on a page in its middle) says
  // nothing of who missed it: a writer that got its xid after that snapshot and wrote before
  // the registration committed is in neither its visible rows nor its in-progress list.
  if (s.registered && s.batchRegistered && complete) {
    const before = s.suspects
    s.suspects = before === undefined ? new Set(inProgress) : new Set(inProgress.filter((xid) => before.has(xid)))
  }
  const settled = s.registered && s.suspects !== undefined && s.suspects.size === 0
  if (settled) s.recheck = SHORTEST_RECHECK
  // Polling, but a last page this small means writers have slowed to a rate that NOTIFYs
  // serve well: ask for them again rather than pausing.
  const quietPageRows = Math.max(1, Math.floor((settings.busyReadInterval / 1000) * settings.keepUpRate))
  const slowedDown = s.pausedBusy && !s.registered && complete && delivered < quietPageRows
  s.pausedBusy = false
  s.lastPageHadRows = delivered > 0
  if (now - s.windowStart >= RATE_WINDOW_MS) {
    s.tooFrequent = s.registered && (s.windowWakes * 1000) / (now - s.windowStart) > settings.keepUpRate
    s.windowStart = now
    s.windowWakes = 0
  }
  // While no wake-ups can come, a caught-up reader looks at the log more often.
  const idlePoll = s.listenPid === undefined ? settings.fallbackPollInterval : settings.pollInterval
  let waitFor: number | undefined
  if (s.lastPageHadRows && !(slowedDown && s.listenPid !== undefined)) {
    // Caught up and registered: anything newer wakes us. Busy (unregistered): a short pause
    // between partial pages lets rows gather: fewer, fuller reads, and the server's time goes
    // to the writers.
    waitFor = !complete || (s.registered && s.wokenDuringBatch)
      ? undefined
      : settled
      ? idlePoll
      : s.registered
      ? recheckDelay(s)
      : settings.busyReadInterval
  } else if (s.listenPid !== undefined && !s.registered) {
    commands.push({ _tag: "Register", pid: s.listenPid })
    s.registered = true
    s.suspects = undefined
    waitFor = undefined
  } else if (s.registered && !settled) {
    waitFor = recheckDelay(s)
  } else {
    waitFor = idlePoll
  }
  // Missed live rows, or a live set at its bound: read on at once.
  if (complete && s.wokenDuringBatch && !s.caughtUp && s.listenPid !== undefined) waitFor = undefined
  if (s.cursor.live.length >= LIVE_BOUND) waitFor = undefined
  if (waitFor === undefined) {
    readNow(s)
    return
  }
  s.wakeAt = now + waitFor
  s.busyPause = !s.registered && waitFor === settings.busyReadInterval
  // Wake-ups (commits) come faster than KEEP_UP_RATE: stop asking writers to NOTIFY and read
  // on by polling. Slower writers keep their immediate wake-ups.
  if (s.registered && s.lastPageHadRows && s.tooFrequent) startPolling(s, now, commands)
}

/** Until every transaction that may have missed the registration has finished: re-read on a short, doubling delay. */
const recheckDelay = (s: Draft): number => {
  const delay = Math.min(s.recheck, s.settings.pollInterval)
  s.recheck = s.recheck * 2
  return delay
}
