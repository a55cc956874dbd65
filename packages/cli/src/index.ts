/**
 * For a project's `pgwatch.config.ts`: `defineConfig` and its types.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export { type AppModule, type Config, type DatabaseConfig, defineConfig } from "./ConfigFile.js"
