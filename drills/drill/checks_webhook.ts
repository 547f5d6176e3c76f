/** @module Checks of the webhook endpoint outage scenario: retries, idempotency, one sync. */
import { type CheckOutcome, outcome } from "./diagnosis.ts";
import type { WebhookOutageEvidence } from "./evidence.ts";

function statuses(evidence: WebhookOutageEvidence): string {
  return (evidence.attempts ?? []).map((a) => `#${a.attempt}=${a.status}`).join(", ") || "none";
}

/** The provider got 503 and connection refused, retried, and reached the restored endpoint. */
export function checkProviderRetried(evidence: WebhookOutageEvidence): CheckOutcome {
  const attempts = evidence.attempts;
  if (attempts === null) return outcome(false, evidence.note, null);
  const unavailable = attempts.filter((a) => a.status === 503).length;
  const refused = attempts.filter((a) => a.status === "error").length;
  const last = attempts.at(-1);
  const delivered = last !== undefined && typeof last.status === "number" && last.status < 300;
  const pass = unavailable > 0 && refused > 0 && delivered;
  return outcome(pass, `attempts: ${statuses(evidence)}`, delivered ? null : "Silent Failures");
}

/** The notification was processed exactly once: one acknowledged delivery, one dedupe key. */
export function checkProcessedOnce(evidence: WebhookOutageEvidence): CheckOutcome {
  if (evidence.attempts === null) return outcome(false, evidence.note, null);
  const pass = evidence.acknowledged === 1 && evidence.keys.length === 1;
  // Never processed is a silent loss; processed twice is a broken idempotency guard, which the
  // document's failure scenarios do not name.
  const lost = evidence.acknowledged === 0 || evidence.keys.length === 0;
  return outcome(
    pass,
    `${evidence.acknowledged} deliveries acknowledged, ${evidence.keys.length} dedupe keys recorded`,
    lost ? "Silent Failures" : null,
  );
}

/** Exactly one sync ran for the notification (one success line, one provider API request). */
export function checkOneSync(evidence: WebhookOutageEvidence): CheckOutcome {
  if (evidence.attempts === null) return outcome(false, evidence.note, null);
  const pass = evidence.syncs === 1 && evidence.apiRequests === 1;
  return outcome(
    pass,
    `${evidence.syncs} successful syncs, ${evidence.apiRequests} provider API requests for ` +
      "the calendar after the notification",
    evidence.syncs === 0 ? "Silent Failures" : null,
  );
}

/** `webhook_dedupe_keys` holds the notification's key. */
export function checkDedupeKeyStored(evidence: WebhookOutageEvidence): CheckOutcome {
  if (evidence.attempts === null) return outcome(false, evidence.note, null);
  return outcome(
    evidence.keys.length === 1,
    `keys: ${evidence.keys.map((key) => JSON.stringify(key)).join(", ") || "none"}`,
    evidence.keys.length === 0 ? "Silent Failures" : null,
  );
}

/** A duplicate redelivery after recovery was acknowledged with a 2xx. */
export function checkDuplicateAcknowledged(evidence: WebhookOutageEvidence): CheckOutcome {
  if (evidence.attempts === null) return outcome(false, evidence.note, null);
  const status = evidence.duplicate?.status ?? null;
  const pass = typeof status === "number" && status >= 200 && status < 300;
  return outcome(pass, `duplicate answered ${status ?? "not sent"}`, null);
}

/** The duplicate triggered no second sync and recorded no second key. */
export function checkNoSecondSync(evidence: WebhookOutageEvidence): CheckOutcome {
  if (evidence.attempts === null) return outcome(false, evidence.note, null);
  const duplicate = evidence.duplicate;
  if (duplicate === null) return outcome(false, "duplicate not sent", null);
  const pass = duplicate.syncs === 0 && duplicate.apiRequests === 0 && duplicate.newKeys === 0;
  return outcome(
    pass,
    `after the duplicate: ${duplicate.syncs} syncs, ${duplicate.apiRequests} provider API ` +
      `requests, ${duplicate.newKeys} new dedupe keys`,
    null,
  );
}
