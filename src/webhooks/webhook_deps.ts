/** @module What the webhook handlers need, and the small helpers they share. */
import type { Sql } from "../storage/client.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { WorkGate } from "../storage/work_gate.ts";
import type { GatedBatches } from "../storage/gated_batches.ts";
import type { BatchOutcome, GoogleRecord } from "../storage/webhook_dedupe_keys.ts";
import type { ChannelLookup } from "./channel_lookup.ts";

/** Dependencies of both webhook endpoints. */
export type WebhookDeps = {
  /** The pool, or null while the database is not open yet (answered 503). */
  sql: () => Sql | null;
  metrics: Metrics;
  lookup: ChannelLookup;
  /** Client-side budget for all database work of one delivery (Graph wants 2xx within 3 s). */
  deadlineMs: number;
  /** Every statement of a delivery passes here: bounded queue, cancelled at the deadline. */
  gate: WorkGate;
  /** Google deliveries recorded together, through `gate`, each within its own deadline. */
  googleRecords: GatedBatches<GoogleRecord, BatchOutcome>;
};

/** A delivery's result label on `calendar_webhook_notifications_total`. */
export type WebhookResult = "accepted" | "duplicate" | "rejected" | "unavailable" | "ignored";

/** Answers a delivery with `handle` (given its start, for deadlines), observing its duration. */
export async function timed(
  deps: WebhookDeps,
  provider: ProviderKind,
  handle: (startedAt: number) => Promise<Response>,
): Promise<Response> {
  const startedAt = performance.now();
  try {
    return await handle(startedAt);
  } finally {
    deps.metrics.webhookDuration.observe({ provider }, (performance.now() - startedAt) / 1000);
  }
}

/** Counts `n` notifications with one result. */
export function count(
  deps: WebhookDeps,
  provider: ProviderKind,
  result: WebhookResult,
  n = 1,
): void {
  if (n > 0) deps.metrics.webhookNotifications.inc({ provider, result }, n);
}

/** The time left of a delivery's database budget, never less than 1 ms. */
export function remaining(startedAt: number, deadlineMs: number): number {
  return Math.max(1, deadlineMs - (performance.now() - startedAt));
}

/** True for `application/json` with any parameters (Google adds a bare `utf-8`). */
export function isJsonContentType(value: string | null): boolean {
  return value !== null && /^application\/json\s*(;.*)?$/i.test(value.trim());
}

/** The error's message and code, for log lines: never the error object, which may carry query data. */
export function errorFields(error: unknown): { error_message: string; error_code: string | null } {
  const err = error instanceof Error ? error : new Error(String(error));
  const code = (err as { code?: unknown }).code;
  return { error_message: err.message, error_code: typeof code === "string" ? code : null };
}
