/**
 * Makes `import()` understand TypeScript (a user's pgwatch.config.ts and the consumer modules
 * it names) with tsx's `register()`, once per process. One process-wide registration, rather
 * than tsx's namespaced `tsImport`, so that a consumer module and the command share one copy
 * of `effect` and `@pgwatch/core` (a namespace would load them a second time).
 */
const FLAG = Symbol.for("@pgwatch/cli/tsx-registered")

type Registry = { [FLAG]?: boolean }

export const ensure = async (): Promise<void> => {
  const registry = globalThis as Registry
  if (registry[FLAG] === true) return
  const { register } = await import("tsx/esm/api")
  register()
  registry[FLAG] = true
}
