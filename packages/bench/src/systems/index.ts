import type { System, SystemName } from "../system.js"

/** Loaders for every system, in the order tables list them; a consumer child loads only its own. */
const loaders: ReadonlyArray<readonly [SystemName, () => Promise<System>]> = [
  ["pgwatch", () => import("./pgwatch.js").then((m) => m.system)],
  ["pgwatch-sql", () => import("./pgwatch.js").then((m) => m.sqlProducers)],
  ["graphile-worker", () => import("./graphileWorker.js").then((m) => m.system)],
  ["pg-boss", () => import("./pgBoss.js").then((m) => m.system)],
  ["floor", () => import("./floor.js").then((m) => m.make(false))],
  ["floor+notify", () => import("./floor.js").then((m) => m.make(true))],
  ["floor+payload", () => import("./floor.js").then((m) => m.payloadFloor)]
]

export const names: ReadonlyArray<SystemName> = loaders.map(([name]) => name)

export const load = (name: string): Promise<System> => {
  const loader = loaders.find(([known]) => known === name)?.[1]
  if (loader === undefined) return Promise.reject(new Error(`unknown system "${name}"`))
  return loader()
}

/** The systems that are products (the floors are not). */
export const isPeer = (name: SystemName) => !name.startsWith("floor")

/** The product a system measures: pgwatch's two producer paths are one product. */
export const product = (name: SystemName) => name === "pgwatch-sql" ? "pgwatch" : name
