/** @module The Hono application: health, readiness, metrics, and the routes callers add. */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { HttpError } from "../core/errors.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { logger } from "../log/setup.ts";

/** The answer of a readiness probe: ready, or not with a reason operators can act on. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/** What the HTTP app needs from the rest of the process. */
export type AppDeps = {
  metrics: Metrics;
  readiness: () => Promise<Readiness>;
  maxBodyBytes: number;
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
 * Answers an error thrown while handling a request: an HttpError as `{ error, message }` with its
 * status and headers, anything else as a logged 500 that reveals nothing.
 */
function answerError(error: Error, c: Context): Response {
  if (error instanceof HttpError) {
    return c.json({ error: error.type, message: error.message }, error.status, error.headers);
  }
  if (error instanceof HTTPException) {
    return c.json({ error: "http_error", message: error.message }, error.status);
  }
  log.error("Unhandled error answering {method} {path}", {
    method: c.req.method,
    path: c.req.path,
    error,
  });
  return c.json({ error: "internal_error", message: "Internal error" }, 500);
}

/** A separate app that serves only /metrics (and /healthz), for METRICS_ADDR. */
export function createMetricsApp(metrics: Metrics): Hono {
  const app = new Hono();
  app.get("/metrics", (c) => metricsResponse(c, metrics));
  app.get("/healthz", (c) => c.json({ status: "ok" }));
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
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: () => {
        throw new HttpError(413, {
          type: "payload_too_large",
          message: `Body exceeds ${deps.maxBodyBytes} bytes`,
        });
      },
    }),
  );

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const state = await deps.readiness();
    return state.ready
      ? c.json({ status: "ready" })
      : c.json({ status: "not_ready", reason: state.reason }, 503);
  });
  if (deps.serveMetrics ?? true) app.get("/metrics", (c) => metricsResponse(c, deps.metrics));

  deps.routes?.(app);

  app.notFound((c) => {
    const message = `No route for ${c.req.method} ${c.req.path}`;
    return answerError(new HttpError(404, { type: "not_found", message }), c);
  });
  app.onError(answerError);
  return app;
}
