/** @module The Hono application: health, readiness, metrics, and the routes callers add. */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { HttpError } from "../core/errors.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { logger } from "../log/setup.ts";
import { problemResponse } from "./problem.ts";

/** The answer of a readiness probe: ready, or not with a reason operators can act on. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/** What the HTTP app needs from the rest of the process. */
export type AppDeps = {
  metrics: Metrics;
  readiness: () => Promise<Readiness>;
  maxBodyBytes: number;
  /** A smaller limit for some paths (the Google webhook's 4 KiB), applied instead of the global one. */
  bodyLimitFor?: (path: string) => number;
  /** True only on a private listener: /readyz then says why it is not ready (host, error text). */
  readinessDetail?: boolean;
  /** False when /metrics is served on its own listener (METRICS_ADDR). */
  serveMetrics?: boolean;
  /** Adds further routes (webhooks) before the catch-all handlers. */
  routes?: (app: Hono) => void;
};

const log = logger("http");

async function metricsResponse(c: Context, metrics: Metrics): Promise<Response> {
  const body = await metrics.registry.metrics();
  return c.body(body, 200, { "content-type": metrics.registry.contentType });
}

/**
 * Answers an error thrown while handling a request: an HttpError as problem+json with its status
 * and headers; a body that cannot be read (truncated or invalid chunked encoding, reset mid-body)
 * as a 400 logged at warning, because bad input must never page anyone; anything else as a logged
 * 500 that reveals nothing.
 */
function answerError(error: Error, c: Context): Response {
  if (error instanceof HttpError) {
    return problemResponse(error.status, error.type, error.message, error.headers, error.extra);
  }
  if (error instanceof HTTPException) {
    const status = error.status >= 400 && error.status < 500 ? error.status : 400;
    return problemResponse(status as 400, "malformed_request", error.message);
  }
  if (isBodyReadError(error)) {
    log.warn("Cannot read the body of {method} {path}: {message}", {
      method: c.req.method,
      path: c.req.path,
      message: error.message.slice(0, 200),
    });
    return problemResponse(400, "unreadable_body", "Cannot read the request body");
  }
  log.error("Unhandled error answering {method} {path}", {
    method: c.req.method,
    path: c.req.path,
    error,
  });
  return problemResponse(500, "internal_error", "Internal error");
}

/** Errors a body stream raises when the client's bytes are not a valid body. */
function isBodyReadError(error: Error): boolean {
  // Deno.serve's body stream fails with these for truncated or invalid chunked encoding.
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Http ||
    error instanceof Deno.errors.UnexpectedEof || error instanceof Deno.errors.ConnectionReset ||
    (error instanceof TypeError && /body|stream|chunk/i.test(error.message));
}

/** /readyz: ready or not; the reason only where `detail` says the listener is private. */
function readinessRoute(app: Hono, readiness: () => Promise<Readiness>, detail: boolean): void {
  app.get("/readyz", async (c) => {
    const state = await readiness();
    if (state.ready) return c.json({ status: "ready" });
    return c.json(
      detail ? { status: "not_ready", reason: state.reason } : { status: "not_ready" },
      503,
    );
  });
}

/** A separate app for METRICS_ADDR: /metrics, /healthz, and /readyz with its reason. */
export function createMetricsApp(metrics: Metrics, readiness?: () => Promise<Readiness>): Hono {
  const app = new Hono();
  app.get("/metrics", (c) => metricsResponse(c, metrics));
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  if (readiness) readinessRoute(app, readiness, true);
  // Called directly, not thrown: Hono may run the not-found handler outside its error handling.
  app.notFound((c) =>
    answerError(new HttpError(404, { type: "not_found", message: `No route for ${c.req.path}` }), c)
  );
  return app;
}

/** Builds the HTTP app; every error answers JSON and is logged, never a bare 500 page. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();

  app.use("*", async (c, next) => {
    await next();
    const route = c.req.routePath === "*" || c.res.status === 404 ? "unmatched" : c.req.routePath;
    deps.metrics.httpRequests.inc({ route, status: `${Math.floor(c.res.status / 100)}xx` });
  });
  // One limit per request, the route's own when smaller: a chunked body to a 4 KiB route must not
  // be buffered up to the global limit first.
  const limiters = new Map<number, ReturnType<typeof bodyLimit>>();
  const limiter = (maxSize: number) => {
    let found = limiters.get(maxSize);
    if (!found) {
      found = bodyLimit({
        maxSize,
        onError: () => {
          throw new HttpError(413, {
            type: "payload_too_large",
            message: `Body exceeds ${maxSize} bytes`,
          });
        },
      });
      limiters.set(maxSize, found);
    }
    return found;
  };
  app.use("*", (c, next) => {
    const own = deps.bodyLimitFor?.(c.req.path) ?? deps.maxBodyBytes;
    return limiter(Math.min(own, deps.maxBodyBytes))(c, next);
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  readinessRoute(app, deps.readiness, deps.readinessDetail ?? false);
  if (deps.serveMetrics ?? true) app.get("/metrics", (c) => metricsResponse(c, deps.metrics));

  deps.routes?.(app);

  app.notFound((c) => {
    const message = `No route for ${c.req.method} ${c.req.path}`;
    return answerError(new HttpError(404, { type: "not_found", message }), c);
  });
  app.onError(answerError);
  return app;
}
