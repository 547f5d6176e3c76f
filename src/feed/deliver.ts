/** @module Delivers one claimed subscriber's changes in order, one message at a time. */
import { backoffDelayMs } from "../failures/backoff.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { feedBounds, readChanges } from "../storage/change_feed.ts";
import type { Sql } from "../storage/client.ts";
import {
  ackThrough,
  type ClaimedSubscriber,
  recordDeliveryFailure,
  releaseSubscriber,
  setSubscriberStatus,
  storeInflight,
} from "../storage/subscribers.ts";
import { sendWebhook } from "./send_webhook.ts";
import { type WebhookMessage, webhookMessage } from "./webhook_message.ts";

const log = logger("feed");

/** What delivery needs; times in milliseconds. */
export type DeliveryDeps = {
  sql: Sql;
  metrics: Metrics;
  fetch?: typeof fetch;
  timeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  maxFailingMs: number;
  leaseMs: number;
  /** Messages per claim before the lease is handed back (so one busy feed cannot hog a slot). */
  maxMessages?: number;
  now?: () => number;
  random?: () => number;
};

/** How a run ended: caught up, handed back with more to send, failed (retry later), lease lost. */
export type DeliveryOutcome = "idle" | "more" | "failed" | "lost" | "paused";

/**
 * Sends the subscriber's next messages in seq order. A message's id and body are stored before
 * its first attempt, so a retry (here or on another replica) resends exactly the same message;
 * the offset moves only after a 2xx. Changes the filter skips are acknowledged in passing.
 */
export async function deliverSubscriber(
  deps: DeliveryDeps,
  subscriber: ClaimedSubscriber,
  signal: AbortSignal,
): Promise<DeliveryOutcome> {
  let acked = subscriber.acked_seq;
  let inflight: WebhookMessage | null = subscriber.inflight_seq === null ? null : {
    seq: subscriber.inflight_seq,
    id: subscriber.inflight_id!,
    body: subscriber.inflight_body!,
  };
  for (let sent = 0; sent < (deps.maxMessages ?? 200); sent++) {
    if (signal.aborted) break;
    if (inflight === null) {
      const next = await nextMessage(deps, subscriber, acked);
      if (next === "pruned") return await pausePruned(deps, subscriber, acked);
      if (typeof next === "number") {
        if (next > acked && !await ackThrough(deps.sql, subscriber, next, lease(deps, false))) {
          return "lost";
        }
        await releaseSubscriber(deps.sql, subscriber);
        return "idle";
      }
      if (!await storeInflight(deps.sql, subscriber, next)) return "lost";
      inflight = next;
    }
    const result = await sendWebhook(
      { fetch: deps.fetch, timeoutMs: deps.timeoutMs, now: deps.now, signal },
      { url: subscriber.url, secrets: validSecrets(subscriber, deps.now?.() ?? Date.now()) },
      inflight,
    );
    deps.metrics.subscriberDeliveries.inc({ subscriber: subscriber.id, result: result.result });
    if (result.result !== "success") {
      return await recordFailure(deps, subscriber, inflight, result);
    }
    if (!await ackThrough(deps.sql, subscriber, inflight.seq, lease(deps, true))) return "lost";
    acked = inflight.seq;
    inflight = null;
  }
  await releaseSubscriber(deps.sql, subscriber);
  return "more";
}

function lease(deps: DeliveryDeps, delivered: boolean) {
  return { delivered, leaseMs: deps.leaseMs };
}

/** The next matching change as a message, or the head to acknowledge when none matches. */
async function nextMessage(
  deps: DeliveryDeps,
  subscriber: ClaimedSubscriber,
  acked: number,
): Promise<WebhookMessage | number | "pruned"> {
  // The head first: every change up to it is visible, so a reader that finds no match may
  // acknowledge through it.
  const bounds = await feedBounds(deps.sql);
  if (acked < bounds.prunedThrough) return "pruned";
  const [change] = await readChanges(deps.sql, acked, 1, {
    connectionId: subscriber.connection_id,
    accountId: subscriber.account_id,
  });
  return change ? webhookMessage(subscriber, change) : bounds.head;
}

/** Secrets to sign with: the current one, and the previous one until its overlap ends. */
export function validSecrets(
  subscriber: { secret: string; previous_secret: string | null; previous_expires_at: Date | null },
  now: number,
): string[] {
  const previous = subscriber.previous_secret !== null &&
      (subscriber.previous_expires_at?.getTime() ?? 0) > now
    ? [subscriber.previous_secret]
    : [];
  return [subscriber.secret, ...previous];
}

async function recordFailure(
  deps: DeliveryDeps,
  subscriber: ClaimedSubscriber,
  message: WebhookMessage,
  failure: Exclude<Awaited<ReturnType<typeof sendWebhook>>, { result: "success" }>,
): Promise<DeliveryOutcome> {
  const attempt = subscriber.inflight_id === message.id ? subscriber.attempts + 1 : 1;
  const delayMs = backoffDelayMs({
    attempt: Math.min(attempt, 30),
    baseMs: deps.backoffBaseMs,
    maxMs: deps.backoffMaxMs,
    retryAfterMs: failure.retryAfterMs,
    random: deps.random?.(),
  });
  const error = {
    result: failure.result,
    status: failure.status,
    message: failure.message,
    webhook_id: message.id,
    seq: message.seq,
    retry_after_ms: failure.retryAfterMs,
    at: new Date(deps.now?.() ?? Date.now()).toISOString(),
  };
  const recorded = await recordDeliveryFailure(deps.sql, subscriber, {
    error,
    delayMs,
    maxFailingMs: deps.maxFailingMs,
  });
  const fields = { subscriber_id: subscriber.id, ...error, attempt, retry_in_ms: delayMs };
  if (recorded?.paused) {
    log.error(
      "Subscriber {subscriber_id} paused: failing longer than SUBSCRIBER_MAX_FAILING",
      fields,
    );
    return "paused";
  }
  log.warn("Delivery of {webhook_id} to subscriber {subscriber_id} failed: {message}", fields);
  return recorded ? "failed" : "lost";
}

async function pausePruned(
  deps: DeliveryDeps,
  subscriber: ClaimedSubscriber,
  acked: number,
): Promise<DeliveryOutcome> {
  await setSubscriberStatus(
    deps.sql,
    subscriber.id,
    "paused",
    "changes after its offset were pruned: re-read the mirror, then replay from the head",
  );
  log.error("Subscriber {subscriber_id} paused: changes after {acked_seq} were pruned", {
    subscriber_id: subscriber.id,
    acked_seq: acked,
  });
  return "paused";
}
