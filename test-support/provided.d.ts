declare module "vitest" {
    interface ProvidedContext {
        databaseUrl: string;
    }
}
export {};
//# sourceMappingURL=provided.d.ts.map