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
  /** Opens signing secrets sealed at rest (the SecretBox's `open`); identity when not given. */
  openSecret?: (stored: string) => Promise<string>;
  now?: () => number;
  random?: () => number;
};

/**
 * How a run ended: caught up, handed back with more to send, failed (retry later), lease lost,
 * paused, or cancelled by shutdown.
 */
export type DeliveryOutcome = "idle" | "more" | "failed" | "lost" | "paused" | "cancelled";

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
  const queue = createQueue(deps, subscriber);
  const open = deps.openSecret ?? ((stored: string) => Promise.resolve(stored));
  // Opened once per claim: the secrets cannot change under a held lease.
  const secrets = await Promise.all(
    validSecrets(subscriber, deps.now?.() ?? Date.now()).map((stored) => open(stored)),
  );
  let inflight: WebhookMessage | null = subscriber.inflight_seq === null ? null : {
    seq: subscriber.inflight_seq,
    id: subscriber.inflight_id!,
    body: subscriber.inflight_body!,
  };
  for (let sent = 0; sent < (deps.maxMessages ?? 500) && !signal.aborted; sent++) {
    if (inflight === null) {
      const next = await queue.next();
      if (next === "pruned") return await pausePruned(deps, subscriber, queue.acked);
      if (typeof next === "number") {
        if (next > queue.acked && !await ackThrough(deps.sql, subscriber, next, lease(deps))) {
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
      { url: subscriber.url, secrets },
      inflight,
    );
    if (result.result !== "success" && signal.aborted) {
      // Cut short by shutdown: not the subscriber's failure; the message waits for the next run.
      await releaseSubscriber(deps.sql, subscriber);
      return "cancelled";
    }
    deps.metrics.subscriberDeliveries.inc({ subscriber: subscriber.id, result: result.result });
    if (result.result !== "success") {
      return await recordFailure(deps, subscriber, inflight, result);
    }
    // The next message (when already read) is fixed in the same statement as the ack.
    const following = queue.peek();
    const acked = await ackThrough(deps.sql, subscriber, inflight.seq, {
      ...lease(deps),
      delivered: true,
      next: following,
    });
    if (!acked) return "lost";
    queue.acked = inflight.seq;
    inflight = following ? queue.take() : null;
  }
  await releaseSubscriber(deps.sql, subscriber);
  return "more";
}

function lease(deps: DeliveryDeps) {
  return { delivered: false, leaseMs: deps.leaseMs };
}

/** The subscriber's upcoming messages, read a page at a time. */
function createQueue(deps: DeliveryDeps, subscriber: ClaimedSubscriber) {
  let buffered: WebhookMessage[] = [];
  const queue = {
    acked: subscriber.acked_seq,
    peek: (): WebhookMessage | null => buffered[0] ?? null,
    take: (): WebhookMessage => buffered.shift()!,
    /** The next message, or the head to acknowledge when nothing after `acked` matches. */
    async next(): Promise<WebhookMessage | number | "pruned"> {
      if (buffered.length > 0) return buffered.shift()!;
      // The head first: every change up to it is visible, so finding no match after the
      // offset means the subscriber may acknowledge through it.
      const bounds = await feedBounds(deps.sql);
      if (queue.acked < bounds.prunedThrough) return "pruned";
      const changes = await readChanges(deps.sql, queue.acked, 100, {
        connectionId: subscriber.connection_id,
        accountId: subscriber.account_id,
      });
      if (changes.length === 0) return bounds.head;
      buffered = changes.map((change) => webhookMessage(subscriber, change));
      return buffered.shift()!;
    },
  };
  return queue;
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
