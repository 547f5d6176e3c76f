/** @module Mounts the provider webhook endpoints on the HTTP app. */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HttpError } from "../core/errors.ts";
import type { Sql } from "../storage/client.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { createWorkGate, type WorkGate } from "../storage/work_gate.ts";
import { type ChannelLookup, createChannelLookup } from "./channel_lookup.ts";
import { handleGoogleWebhook } from "./google_webhook.ts";
import { handleMicrosoftWebhook } from "./microsoft_webhook.ts";
import type { WebhookDeps } from "./webhook_deps.ts";

// Google notifications have no body; anything sizeable is not from Google.
const GOOGLE_MAX_BODY_BYTES = 4_096;

/** Body limits of webhook paths below the global one, enforced before a body is buffered. */
export const WEBHOOK_BODY_LIMITS: Readonly<Record<string, number>> = {
  "/webhooks/google": GOOGLE_MAX_BODY_BYTES,
};

/** Adds `/webhooks/google` and `/webhooks/microsoft` (every method, so others get a 405). */
export function mountWebhooks(
  app: Hono,
  options: {
    sql: () => Sql | null;
    metrics: Metrics;
    deadlineMs: number;
    lookup?: ChannelLookup;
    /** Opens channel secrets sealed at rest; see createChannelLookup. */
    openSecret?: (stored: string) => Promise<string>;
    /** Slots (the pool's size) and queue length of the database gate; see DB_QUEUE_MAX. */
    queue?: { maxConcurrent: number; maxQueued: number };
    gate?: WorkGate;
  },
): void {
  const { metrics } = options;
  const deps: WebhookDeps = {
    sql: options.sql,
    metrics,
    deadlineMs: options.deadlineMs,
    lookup: options.lookup ?? createChannelLookup({ open: options.openSecret }),
    gate: options.gate ?? createWorkGate({
      maxConcurrent: options.queue?.maxConcurrent ?? 10,
      maxQueued: options.queue?.maxQueued ?? 100,
      onShed: (reason) => metrics.databaseShed.inc({ reason }),
      onQueueLength: (length) => metrics.databaseQueued.set(length),
    }),
  };
  app.all(
    "/webhooks/google",
    bodyLimit({
      maxSize: GOOGLE_MAX_BODY_BYTES,
      onError: () => {
        deps.metrics.webhookNotifications.inc({ provider: "google", result: "rejected" });
        throw new HttpError(413, {
          type: "payload_too_large",
          message:
            `Google notifications have no body; got more than ${GOOGLE_MAX_BODY_BYTES} bytes`,
        });
      },
    }),
    (c) => handleGoogleWebhook(deps, c),
  );
  app.all("/webhooks/microsoft", (c) => handleMicrosoftWebhook(deps, c));
}
