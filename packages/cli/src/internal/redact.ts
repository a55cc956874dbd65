/** What a password is printed as. */
export const MASK = "***"

/**
 * A connection URL with its password (in the user part or a `password` parameter) masked;
 * anything else about it (user, host, database) is kept for the reader.
 */
export const redactUrl = (url: string): string => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return redactText(url)
  }
  if (parsed.password === "" && !parsed.searchParams.has("password")) return url
  if (parsed.password !== "") parsed.password = MASK
  if (parsed.searchParams.has("password")) parsed.searchParams.set("password", MASK)
  return parsed.toString()
}

// scheme://user:password@ (to the last @ of the word, as a password may hold an unescaped @),
// and password=... in a query string or a libpq keyword list.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)\S*@/gi
const PASSWORD_PARAMETER = /(\bpassword=)[^\s&"',;]*/gi

/** Any text (an error message) with the passwords of the connection strings in it masked. */
export const redactText = (text: string): string =>
  text.replace(URL_PASSWORD, `$1${MASK}@`).replace(PASSWORD_PARAMETER, `$1${MASK}`)
