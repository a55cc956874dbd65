/**
 * @since 0.1.0
 */
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
  readonly payload: A
  /** Start of the writing transaction. */
  readonly createdAt: Date
  readonly isReplay: boolean
}

/**
 * The payload that `notify_data_change()` table triggers write.
 *
 * @since 0.1.0
 * @category schemas
 */
export class DataChange extends Schema.Class<DataChange>("@pgwatch/DataChange")({
  table: Schema.String,
  schema: Schema.String,
  action: Schema.Literal("INSERT", "UPDATE", "DELETE"),
  id: Schema.NullishOr(Schema.Union(Schema.String, Schema.Number)),
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
  /** The row's `id` column, if the table has one. */
  get recordId(): Option.Option<string | number> {
    return Option.fromNullable(this.id)
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
