import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"

/** Writes a line to standard output (results). */
export const out = (line: string) => Effect.sync(() => void process.stdout.write(`${line}\n`))

/** Writes a line to standard error (progress, notes, errors). */
export const err = (line: string) => Effect.sync(() => void process.stderr.write(`${line}\n`))

/**
 * The JSON replacer of everything the command prints: bigints (every log id, and integers past
 * 2^53 in payloads) and exact decimals (`BigDecimal`s in payloads) are written as strings of
 * their exact digits, so that no reader can round them. Dates are ISO strings.
 */
function exact(this: Record<string, unknown>, key: string, v: unknown): unknown {
  // `v` has been through toJSON already; the holder still has the BigDecimal itself.
  const original = this[key]
  return typeof v === "bigint" ? String(v) : BigDecimal.isBigDecimal(original) ? BigDecimal.format(original) : v
}

/** Prints a value as JSON (`--json`), numbers exact (see `exact`). */
export const json = (value: unknown) => out(JSON.stringify(value, exact, 2))

/** A value as one line of JSON for people to read (numbers exact, as in `json`); never throws (a cycle gives its `String`). */
export const inline = (value: unknown): string => {
  try {
    return JSON.stringify(value, exact) ?? String(value)
  } catch {
    return String(value)
  }
}

/** A time as `2024-05-01 10:00:00Z`: to the second, in UTC. */
export const time = (date: Date): string => `${date.toISOString().slice(0, 19).replace("T", " ")}Z`

/** A plain text table: a header row, then the rows, columns padded to fit. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** 3s, 4m05s, 2h03m, 3d04h. */
export const age = (seconds: number): string => {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`
}

/** Shortens a text to one line of at most n characters. */
export const clip = (text: string, n = 60): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length <= n ? flat : `${flat.slice(0, n - 1)}…`
}
