// What the vitest global setup (test-support/database.ts) provides to every test file; the
// declaration lives there too, but this project's tsconfig does not include that file.
declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

export {}
