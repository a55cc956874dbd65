/**
 * @since 0.1.0
 */
import * as BigDecimal from "effect/BigDecimal"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/**
 * One notification as a handler sees it: the log row, its decoded payload, and whether it was
 * played back from the log (written while this consumer was not listening) or came live.
 *
 * @since 0.1.0
 * @category models
 */
export interface Notification<A = unknown> {
  /** The log row's id. */
  readonly id: bigint
  readonly channel: string
  /** Decoded by the consumer's schema, if any, from JSON whose numbers are exact (`Json.parse`). */
  readonly payload: A
  /** Start of the writing transaction. */
  readonly createdAt: Date
  readonly isReplay: boolean
}

/**
 * The payload that `notify_data_change()` table triggers write. Column values are exact (see
 * `Json.parse`): a `bigint` column beyond ±(2^53 − 1) arrives as a `bigint`, a `numeric` that a
 * double cannot hold as a `BigDecimal`.
 *
 * @since 0.1.0
 * @category schemas
 */
export class DataChange extends Schema.Class<DataChange>("@pgwatch/DataChange")({
  table: Schema.String,
  schema: Schema.String,
  action: Schema.Literal("INSERT", "UPDATE", "DELETE"),
  id: Schema.NullishOr(Schema.Union(Schema.String, Schema.Number, Schema.BigIntFromSelf, Schema.BigDecimalFromSelf)),
  old_data: Schema.NullishOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  new_data: Schema.NullishOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  metadata: Schema.Struct({
    user_id: Schema.NullishOr(Schema.String),
    session_id: Schema.NullishOr(Schema.String),
    transaction_id: Schema.String
  })
}) {
  get isInsert(): boolean {
    return this.action === "INSERT"
  }
  get isUpdate(): boolean {
    return this.action === "UPDATE"
  }
  get isDelete(): boolean {
    return this.action === "DELETE"
  }
  /**
   * The row's `id` column, if the table has one: an integer id as a `bigint` whatever its size
   * (one type for the column, even past 2^53), any other id as its exact text (a uuid, a code).
   */
  get recordId(): Option.Option<bigint | string> {
    const id = this.id
    if (id === null || id === undefined) return Option.none()
    if (typeof id === "bigint" || typeof id === "string") return Option.some(id)
    if (typeof id === "number") return Option.some(Number.isInteger(id) ? BigInt(id) : String(id))
    return Option.some(BigDecimal.format(id))
  }
  get oldData(): Option.Option<Readonly<Record<string, unknown>>> {
    return Option.fromNullable(this.old_data)
  }
  get newData(): Option.Option<Readonly<Record<string, unknown>>> {
    return Option.fromNullable(this.new_data)
  }
}

const decodeDataChange = Schema.decodeUnknownOption(DataChange)

/**
 * The table change a notification describes, if it was written by a table trigger.
 *
 * @since 0.1.0
 * @category getters
 */
export const dataChange = (notification: Notification): Option.Option<DataChange> =>
  notification.payload instanceof DataChange ? Option.some(notification.payload) : decodeDataChange(notification.payload)

/**
 * Whether a notification was written by a table trigger.
 *
 * @since 0.1.0
 * @category getters
 */
export const isDataChange = (notification: Notification): boolean => Option.isSome(dataChange(notification))
