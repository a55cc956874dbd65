/**
 * Freezes plain objects and arrays all the way down; class instances (`BigDecimal`) keep their
 * caches. For payloads shared by several consumers of a process, so that none can change what
 * another is handed.
 */
export const deepFreeze = <A>(value: A): A => {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    const prototype: unknown = Object.getPrototypeOf(value)
    if (Array.isArray(value) || prototype === Object.prototype || prototype === null) {
      Object.freeze(value)
      for (const child of Object.values(value)) deepFreeze(child)
    }
  }
  return value
}
