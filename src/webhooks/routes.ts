/** @module Mounts the provider webhook endpoints on the HTTP app. */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { DatabaseNotOpenError, HttpError } from "../core/errors.ts";
import type { Sql } from "../storage/client.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { createWorkGate, type ShedReason, type WorkGate } from "../storage/work_gate.ts";
import { createGatedBatches } from "../storage/gated_batches.ts";
import { type GoogleRecord, recordGoogleNotifications } from "../storage/webhook_dedupe_keys.ts";
import { type ChannelLookup, createChannelLookup } from "./channel_lookup.ts";
import { handleGoogleWebhook } from "./google_webhook.ts";
import { handleMicrosoftWebhook } from "./microsoft_webhook.ts";
import type { WebhookDeps } from "./webhook_deps.ts";

// Google notifications have no body; anything sizeable is not from Google.
const GOOGLE_MAX_BODY_BYTES = 4_096;

// Deliveries recorded by one statement at most: at 32 concurrent clients a batch carries ~30.
const GOOGLE_RECORD_BATCH = 64;

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
  const maxQueued = options.queue?.maxQueued ?? 100;
  const onShed = (reason: ShedReason) => metrics.databaseShed.inc({ reason });
  // Work waits in the gate for a slot, and Google deliveries before it for a batch: both count.
  const queued = { gate: 0, batches: 0 };
  const showQueued = (part: keyof typeof queued, length: number) => {
    queued[part] = length;
    metrics.databaseQueued.set(queued.gate + queued.batches);
  };
  const gate = options.gate ?? createWorkGate({
    maxConcurrent: options.queue?.maxConcurrent ?? 10,
    maxQueued,
    onShed,
    onQueueLength: (length) => showQueued("gate", length),
  });
  const deps: WebhookDeps = {
    sql: options.sql,
    metrics,
    deadlineMs: options.deadlineMs,
    lookup: options.lookup ?? createChannelLookup({ open: options.openSecret }),
    gate,
    googleRecords: createGatedBatches({
      gate,
      what: "Recording Google notifications",
      maxBatch: GOOGLE_RECORD_BATCH,
      maxQueued,
      onShed,
      onQueueLength: (length) => showQueued("batches", length),
      onBatch: (size) =>
        metrics.databaseBatchSize.observe({ statement: "google_notifications" }, size),
      flush: async (records: GoogleRecord[], scope) => {
        const sql = options.sql();
        if (!sql) throw new DatabaseNotOpenError();
        return await recordGoogleNotifications(sql, records, scope);
      },
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
