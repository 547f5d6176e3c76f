/** @module Serves a Hono app on a free loopback port for in-process HTTP tests. */
import type { Hono } from "hono";

/** A served app: its base URL and how to stop it (in-flight requests finish first). */
export type ServedApp = { url: string; close(): Promise<void> };

/** Serves `app` on 127.0.0.1, on `port` or a free one. */
export function serveApp(app: Hono, port = 0): Promise<ServedApp> {
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: (addr) =>
        resolve({ url: `http://127.0.0.1:${addr.port}`, close: () => server.shutdown() }),
    }, app.fetch);
  });
}
