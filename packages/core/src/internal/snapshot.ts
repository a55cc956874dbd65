/** Transaction ids in progress when a snapshot (text form `xmin:xmax:xip,...`) was taken. */
export const inProgress = (snapshot: string): ReadonlyArray<string> => {
  const list = snapshot.split(":")[2] ?? ""
  return list === "" ? [] : list.split(",")
}

/** A snapshot that sees no transaction at all: a cursor at the start of the log. */
export const beginning = "1:1:"
