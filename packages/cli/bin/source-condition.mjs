// Node module hook used only when pgwatch runs from a source checkout (see pgwatch.mjs):
// resolves this repository's own packages (@pgwatch/*) to their TypeScript sources through
// the "source" export condition, so no build step is needed. Other packages are untouched.
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith("@pgwatch/") && !context.conditions.includes("source")) {
    return nextResolve(specifier, { ...context, conditions: [...context.conditions, "source"] })
  }
  return nextResolve(specifier, context)
}
