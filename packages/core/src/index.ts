/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Admin from "./Admin.js"

/**
 * @since 0.1.0
 */
export * as Channel from "./Channel.js"

/**
 * @since 0.1.0
 */
export * as Consumer from "./Consumer.js"

/**
 * @since 0.1.0
 */
export * as ConsumerTest from "./ConsumerTest.js"

/**
 * @since 0.1.0
 */
export * as Json from "./Json.js"

/**
 * @since 0.1.0
 */
export * as Migrator from "./Migrator.js"

/**
 * @since 0.1.0
 */
export * as Notification from "./Notification.js"

/**
 * @since 0.1.0
 */
export * as PgWatch from "./PgWatch.js"

/**
 * @since 0.1.0
 */
export * from "./PgWatchError.js"

/**
 * @since 0.1.0
 */
export * as Retention from "./Retention.js"

/**
 * @since 0.1.0
 */
export * as Roles from "./Roles.js"

/**
 * @since 0.1.0
 */
export * as Subscription from "./Subscription.js"

/**
 * @since 0.1.0
 */
export * as Triggers from "./Triggers.js"
