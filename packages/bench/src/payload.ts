/** The notification every system carries: about 200 bytes of JSON. */
export interface Payload {
  /** Position in the run's sequence, so a consumer can report which one it handled. */
  readonly seq: number
  /** `monoMicros()` just before the producer sent the statement that holds it. */
  readonly sentAt: number
  readonly body: string
}

const PAYLOAD_BYTES = 200
const filler = "x".repeat(PAYLOAD_BYTES)

export const makePayload = (seq: number, sentAt: number): Payload => {
  const bare = JSON.stringify({ seq, sentAt, body: "" }).length
  return { seq, sentAt, body: filler.slice(0, Math.max(0, PAYLOAD_BYTES - bare)) }
}

/** The sequence number of a payload as a consumer received it (decoded JSON). */
export const seqOf = (payload: unknown): number =>
  typeof payload === "object" && payload !== null && typeof (payload as { seq?: unknown }).seq === "number"
    ? (payload as { seq: number }).seq
    : -1
