import { Effect } from "effect"
import * as Net from "node:net"

/**
 * A TCP proxy to the test database that can be frozen: while frozen it silently drops every
 * byte in both directions and keeps the sockets open, like a network path that died without
 * a reset (a half-open connection). Nothing errors; only time-outs can notice.
 */
export interface Proxy {
  readonly port: number
  readonly freeze: () => void
  readonly thaw: () => void
}

export const makeProxy = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.async<{ proxy: Proxy; server: Net.Server; sockets: Set<Net.Socket> }>((resume) => {
      let frozen = false
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((client) => {
        const upstream = Net.connect(target.port, target.host)
        for (const socket of [client, upstream]) {
          sockets.add(socket)
          socket.on("error", () => socket.destroy())
          socket.on("close", () => sockets.delete(socket))
        }
        client.on("data", (data) => frozen || upstream.write(data))
        upstream.on("data", (data) => frozen || client.write(data))
        client.on("close", () => upstream.destroy())
        upstream.on("close", () => client.destroy())
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as Net.AddressInfo).port
        resume(Effect.succeed({
          proxy: { port, freeze: () => (frozen = true), thaw: () => (frozen = false) },
          server,
          sockets
        }))
      })
    }),
    ({ server, sockets }) =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
  ).pipe(Effect.map(({ proxy }) => proxy))
