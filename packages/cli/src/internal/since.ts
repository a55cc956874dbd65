import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/**
 * A `--since` value as a time: an age before `now` (`90m`, `2h`, `1.5d`, `30 minutes`) or a
 * date (`2024-05-01`, `2024-05-01T10:00:00Z`); else the message saying what to give.
 */
export const parseSince = (text: string, now: number): Either.Either<Date, string> => {
  const short = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim())
  if (short !== null) {
    const unit = { s: 1, m: 60, h: 3600, d: 86400 }[short[2] as "s" | "m" | "h" | "d"]
    return Either.right(new Date(now - Number(short[1]) * unit * 1000))
  }
  const duration = Duration.decodeUnknown(text.trim())
  if (Option.isSome(duration)) return Either.right(new Date(now - Duration.toMillis(duration.value)))
  const date = new Date(text)
  if (!Number.isNaN(date.getTime()) && /\d{4}-\d{2}-\d{2}/.test(text)) return Either.right(date)
  return Either.left(
    `invalid --since ${JSON.stringify(text)}: give a time (2024-05-01T10:00:00Z) or an age (90m, 2h, 1d, "30 minutes")`
  )
}
