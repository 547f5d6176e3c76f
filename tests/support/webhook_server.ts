/** @module Serves only the webhook endpoints on a loopback port, over a database the test picks. */
import type { Hono } from "hono";
import { createApp } from "../../src/http/app.ts";
import { createMetrics, type Metrics } from "../../src/metrics/metrics.ts";
import type { Sql } from "../../src/storage/client.ts";
import { mountWebhooks } from "../../src/webhooks/routes.ts";
import type { WorkGate } from "../../src/storage/work_gate.ts";
import { serveApp, type ServedApp } from "./serve_app.ts";

/** A served webhook app with its metrics; disposing it lets in-flight requests finish. */
export type WebhookServer = ServedApp & {
  app: Hono;
  metrics: Metrics;
  [Symbol.asyncDispose](): Promise<void>;
};

/** Serves `/webhooks/*` over whatever `sql()` returns at each request (null: not open). */
export async function serveWebhooks(
  sql: () => Sql | null,
  options: {
    deadlineMs?: number;
    openSecret?: (stored: string) => Promise<string>;
    gate?: WorkGate;
  } = {},
): Promise<WebhookServer> {
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 1_048_576,
    routes: (app) =>
      mountWebhooks(app, {
        sql,
        metrics,
        deadlineMs: options.deadlineMs ?? 2_500,
        openSecret: options.openSecret,
        gate: options.gate,
      }),
  });
  const served = await serveApp(app);
  return { ...served, app, metrics, [Symbol.asyncDispose]: served.close };
}
