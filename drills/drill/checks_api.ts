/** @module Checks of the external API outage scenario (503, and 429 with Retry-After). */
import { compact, when } from "./checks_common.ts";
import { type CheckOutcome, outcome } from "./diagnosis.ts";
import type { ApiOutageEvidence } from "./evidence.ts";

// Timestamps come from two clocks on one machine (the database's and the drill's) and
// `backoff_until` has microseconds: a few milliseconds of rounding are not an early retry.
const CLOCK_SLACK_MS = 5;

/** `backoff_until` was set to a future timestamp when the row was read. */
export function checkBackoffSet(evidence: ApiOutageEvidence): CheckOutcome {
  const until = evidence.row?.backoffUntil ?? null;
  const ahead = until === null ? null : until.getTime() - evidence.readAt;
  return outcome(
    ahead !== null && ahead > 0,
    `backoff_until=${when(until)}, read at ${when(evidence.readAt)}` +
      (ahead === null ? "" : ` (${ahead} ms ahead)`),
    "Backoff Not Activated",
  );
}

/** `error_count` > 0 after the failure. */
export function checkErrorCounted(evidence: ApiOutageEvidence): CheckOutcome {
  const count = evidence.row?.errorCount ?? null;
  return outcome(count !== null && count > 0, `error_count=${count}`, "Backoff Not Activated");
}

/** `last_error` is a JSONB object with the error's details (kind, HTTP status, message). */
export function checkLastErrorDetails(evidence: ApiOutageEvidence): CheckOutcome {
  const value = evidence.row?.lastError ?? null;
  const isObject = typeof value === "object" && value !== null && !Array.isArray(value);
  const record = isObject ? value as Record<string, unknown> : {};
  const pass = isObject && record.kind === evidence.expectedKind &&
    record.status === evidence.injectedStatus && typeof record.message === "string" &&
    record.message.length > 0;
  return outcome(pass, `last_error=${compact(value)}`, "Silent Failures");
}

/** `sync_needed` is still true, so the sync is retried after the backoff. */
export function checkSyncStillNeeded(evidence: ApiOutageEvidence): CheckOutcome {
  const needed = evidence.row?.syncNeeded ?? null;
  return outcome(needed === true, `sync_needed=${needed}`, "Backoff Not Activated");
}

/** The provider received no request for this calendar before `backoff_until`. */
export function checkNoEarlyRetry(evidence: ApiOutageEvidence): CheckOutcome {
  const until = evidence.row?.backoffUntil ?? null;
  if (until === null) {
    return outcome(false, "no backoff_until to compare retries with", "Backoff Not Activated");
  }
  const early = evidence.retryRequestTimes.filter((at) => at < until.getTime() - CLOCK_SLACK_MS);
  const first = evidence.retryRequestTimes[0];
  const detail = `${evidence.retryRequestTimes.length} requests after the failure, ` +
    `${early.length} before backoff_until=${when(until)}` +
    (first === undefined
      ? ""
      : `; first retry at ${when(first)} (${first - until.getTime()} ms after backoff_until)`);
  return outcome(early.length === 0, detail, "Backoff Not Activated");
}

/** The backoff lasts at least as long as the provider's Retry-After asked. */
export function checkRetryAfterHonoured(evidence: ApiOutageEvidence): CheckOutcome {
  const until = evidence.row?.backoffUntil ?? null;
  const asked = evidence.retryAfterMs;
  if (asked === null) return outcome(false, "no Retry-After was injected", null);
  if (until === null || evidence.failedAt === null) {
    return outcome(false, `backoff_until=${when(until)}`, "Backoff Not Activated");
  }
  const granted = until.getTime() - evidence.failedAt;
  const record = (evidence.row?.lastError ?? {}) as Record<string, unknown>;
  const pass = granted >= asked - CLOCK_SLACK_MS && record.retry_after_ms === asked;
  return outcome(
    pass,
    `Retry-After ${asked} ms; backoff_until ${granted} ms after the failed request; ` +
      `last_error.retry_after_ms=${record.retry_after_ms ?? null}`,
    "Backoff Not Activated",
  );
}
