// What the global setup (database.ts) hands to every test file through `inject`.
declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}
export {}
