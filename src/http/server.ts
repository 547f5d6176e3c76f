/**
 * @module Serves a Hono app over HTTP/1.1 on a TCP listener calsync owns, and shuts it down.
 *
 * Deno.serve offers no header, body or idle timeouts and no connection cap (its options are the
 * address, a signal, `onError`, `onListen`, compression and the backlog), and it buffers a body
 * before middleware can refuse it: slow clients held connections and megabytes each for as long
 * as they liked. Here every connection is served by `serveConnection`, which puts a deadline on
 * each phase; the listener caps connections and the bytes of bodies held in memory at once.
 */
import type { Hono } from "hono";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { problemBody } from "./problem.ts";
import { type CloseReason, serveConnection, type ServedConnection } from "./connection.ts";

/** A running HTTP server. */
export type HttpServer = { port: number; hostname: string; shutdown(): Promise<void> };

/** Limits of one listener; every one is a setting (see the README's configuration table). */
export type ServerLimits = {
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxBytesInFlight: number;
  maxHeaderBytes: number;
  /** The largest body a path accepts, enforced before any of it is buffered. */
  bodyLimit: (path: string) => number;
};

/** Limits for listeners started without settings (the defaults of the configuration). */
export const DEFAULT_LIMITS: ServerLimits = {
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
  maxConnections: 1_024,
  maxBytesInFlight: 67_108_864,
  maxHeaderBytes: 16_384,
  bodyLimit: () => 1_048_576,
};

const log = logger("http");
const encoder = new TextEncoder();
const CONNECTION_LIMIT_ANSWER = encoder.encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n" +
    "connection: close\r\nretry-after: 1\r\n" +
    `content-length: ${problemBody(503, "overloaded", "Too many connections").length}\r\n\r\n` +
    problemBody(503, "overloaded", "Too many connections"),
);

/** Starts listening; resolves once the port is bound (port 0 picks a free one). */
export function startHttpServer(
  app: Hono,
  options: {
    hostname: string;
    port: number;
    name?: string;
    metrics: Metrics;
    limits?: Partial<ServerLimits>;
  },
): Promise<HttpServer> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const name = options.name ?? "main";
  const { metrics } = options;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: options.hostname, port: options.port, transport: "tcp" });
  } catch (error) {
    return Promise.reject(error);
  }
  const connections = new Set<ServedConnection>();
  const closing = new Set<Promise<void>>();
  let inFlight = 0;
  let draining = false;

  const closed = (reason: CloseReason) =>
    metrics.httpConnectionsClosed.inc({ server: name, reason });
  const context = {
    handler: (request: Request) => app.fetch(request),
    ...limits,
    reserve(bytes: number) {
      if (bytes === 0) return true;
      if (inFlight + bytes > limits.maxBytesInFlight) return false;
      inFlight += bytes;
      metrics.httpBytesInFlight.set({ server: name }, inFlight);
      return true;
    },
    release(bytes: number) {
      if (bytes === 0) return;
      inFlight -= bytes;
      metrics.httpBytesInFlight.set({ server: name }, inFlight);
    },
    draining: () => draining,
    onRefused(refusal: { status: number; type: string; message: string }) {
      log.warn("Refused a malformed request: {message}", {
        server: name,
        status: refusal.status,
        problem: refusal.type,
        message: refusal.message,
      });
    },
  };

  function turnAway(conn: Deno.TcpConn): void {
    closed("connection_limit");
    const task = conn.write(CONNECTION_LIMIT_ANSWER).then(() => {}, () => {}).finally(() => {
      conn.close();
      closing.delete(task);
    });
    closing.add(task);
  }

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // The listener was closed by shutdown.
      }
      if (connections.size >= limits.maxConnections) {
        turnAway(conn);
        continue;
      }
      const served = serveConnection(conn, context);
      connections.add(served);
      metrics.httpConnectionsOpen.set({ server: name }, connections.size);
      served.done.then((reason) => {
        connections.delete(served);
        metrics.httpConnectionsOpen.set({ server: name }, connections.size);
        closed(reason);
      });
    }
  })();

  const addr = listener.addr;
  log.info("HTTP server {server} listening on {hostname}:{port}", {
    server: name,
    hostname: addr.hostname,
    port: addr.port,
  });
  return Promise.resolve({
    port: addr.port,
    hostname: addr.hostname,
    // In-flight requests finish (answered with `connection: close`); idle connections close now,
    // and partial requests are bounded by their header and body deadlines.
    async shutdown() {
      if (!draining) {
        draining = true;
        listener.close();
      }
      await accepting;
      for (const served of connections) if (served.idle) served.cut("shutdown");
      await Promise.all([...connections].map((served) => served.done));
      await Promise.all([...closing]);
    },
  });
}
