/** @module Serves a Hono app on Deno.serve and shuts it down gracefully. */
import type { Hono } from "hono";
import { logger } from "../log/setup.ts";

/** A running HTTP server. */
export type HttpServer = { port: number; hostname: string; shutdown(): Promise<void> };

const log = logger("http");

/** Starts listening; resolves once the port is bound (port 0 picks a free one). */
export function startHttpServer(
  app: Hono,
  options: { hostname: string; port: number; name?: string },
): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: options.hostname,
        port: options.port,
        onListen: (addr) => {
          log.info("HTTP server {server} listening on {hostname}:{port}", {
            server: options.name ?? "main",
            hostname: addr.hostname,
            port: addr.port,
          });
          resolve({
            port: addr.port,
            hostname: addr.hostname,
            // shutdown() lets in-flight requests finish; aborting a signal would drop them.
            shutdown: () => server.shutdown(),
          });
        },
        onError: (error) => {
          log.error("HTTP request failed", { error });
          return new Response(JSON.stringify({ error: "internal_error" }), {
            status: 500,
            headers: { "content-type": "application/json" },
          });
        },
      }, app.fetch);
    } catch (error) {
      reject(error);
    }
  });
}
