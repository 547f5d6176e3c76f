/**
 * @module Checks of the external API outage scenario (503 for several attempts in a row, and 429
 * with a Retry-After beyond the maximum backoff). Every check reads each failure's row as the
 * failed run left it (the audit trail), never the row as it is when the drill gets to read it.
 */
import { checkFailureLogged, compact, when } from "./checks_common.ts";
import { type CheckOutcome, outcome } from "./diagnosis.ts";
import type { ApiOutageEvidence, SyncRun } from "./evidence.ts";
import { failedRuns, grantedDelay, jitterBounds, recoveryRun } from "./runs.ts";

// Request times come from the drill's clock, backoff_until from the database's (one machine),
// and timestamps have microseconds: a few milliseconds of rounding are not an early retry.
const CLOCK_SLACK_MS = 5;

// One failure's figures for evidence text: "#1 ...; #2 ...".
function each(runs: readonly SyncRun[], describe: (run: SyncRun, n: number) => string): string {
  return runs.map((run, i) => `#${i + 1} ${describe(run, i + 1)}`).join("; ") || "no failed run";
}

/** Exactly one trigger started the outage: the operator's sync request, and nothing else. */
export function checkOneTrigger(evidence: ApiOutageEvidence): CheckOutcome {
  const later = evidence.runs.slice(1).reduce((n, run) => n + run.requestsBefore, 0);
  const first = evidence.runs[0]?.requestsBefore ?? evidence.triggers;
  return outcome(
    first === 1 && later === 0,
    `${first} sync requests before the first run, ${later} between the later runs`,
    null,
  );
}

/** The outage lasted for the injected failures: that many failed runs in a row. */
export function checkConsecutiveFailures(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  return outcome(
    failed.length >= evidence.injectedFailures,
    `${failed.length} failed runs in a row (the provider failed ${evidence.injectedFailures}); ` +
      `${evidence.providerRequests.length} event requests: ` +
      (evidence.providerRequests.map((r) => r.status).join(", ") || "none"),
    "Backoff Not Activated",
  );
}

/** A structured JSON error line for each failure, carrying the backoff the failure stored. */
export function checkFailuresLogged(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  const lines = evidence.failureLogs;
  const problems: string[] = [];
  failed.forEach((run, i) => {
    const line = lines[i] ?? null;
    const shape = checkFailureLogged({ failureLog: line, expectedKind: evidence.expectedKind });
    if (!shape.pass) problems.push(`#${i + 1}: ${shape.detail}`);
    const stored = when(run.end?.state.backoffUntil);
    if (line !== null && shape.pass && line.backoff_until !== stored) {
      problems.push(`#${i + 1}: line says backoff_until=${line.backoff_until}, row ${stored}`);
    }
  });
  const pass = failed.length > 0 && problems.length === 0;
  return outcome(
    pass,
    `${lines.length} error lines for ${failed.length} failed runs` +
      (problems.length > 0 ? `; ${problems.join("; ")}` : `; kind=${evidence.expectedKind}`),
    "Silent Failures",
  );
}

/** Each failure set `backoff_until` later than the failure itself. */
export function checkBackoffSet(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  const pass = failed.length > 0 && failed.every((run) => (grantedDelay(run) ?? 0) > 0);
  return outcome(
    pass,
    each(failed, (run) => {
      const delay = grantedDelay(run);
      return `backoff_until=${when(run.end?.state.backoffUntil)}` +
        (delay === null ? "" : ` (${delay} ms after the failure)`);
    }),
    "Backoff Not Activated",
  );
}

/** `error_count` > 0 after each failure, one more per failure in a row. */
export function checkErrorCounted(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  const counts = failed.map((run) => run.end?.state.errorCount ?? null);
  const pass = failed.length > 0 &&
    counts.every((count, i) => count === evidence.errorsBefore + i + 1);
  return outcome(
    pass,
    `error_count after each failure: ${counts.join(", ")}`,
    "Backoff Not Activated",
  );
}

/** `last_error` is a JSONB object with each failure's details (kind, HTTP status, message). */
export function checkLastErrorDetails(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  const bad = failed.filter((run) => {
    const value = run.end?.state.lastError ?? null;
    const isObject = typeof value === "object" && value !== null && !Array.isArray(value);
    const record = isObject ? value as Record<string, unknown> : {};
    return !(isObject && record.kind === evidence.expectedKind &&
      record.status === evidence.injectedStatus && typeof record.message === "string" &&
      record.message.length > 0);
  });
  const shown = bad[0] ?? failed.at(-1);
  return outcome(
    failed.length > 0 && bad.length === 0,
    `${failed.length - bad.length}/${failed.length} failures stored details; ` +
      `last_error=${compact(shown?.end?.state.lastError ?? null)}`,
    "Silent Failures",
  );
}

/** `sync_needed` is still true as each failure left the row, so the daemon retries by itself. */
export function checkSyncStillNeeded(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  const values = failed.map((run) => run.end?.state.syncNeeded ?? null);
  return outcome(
    failed.length > 0 && values.every((v) => v === true),
    `sync_needed after each failure: ${values.join(", ") || "no failure recorded"}`,
    "Backoff Not Activated",
  );
}

/**
 * The delays grow: the n-th failure in a row granted between half and all of
 * min(max, base * 2^(n-1)) (1 ms for the timestamps' rounding).
 */
export function checkBackoffGrows(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  let pass = failed.length >= 2;
  const detail = each(failed, (run, n) => {
    const delay = grantedDelay(run);
    const { low, high } = jitterBounds(evidence.errorsBefore + n, evidence.backoff);
    if (delay === null || delay < low - 1 || delay > high + 1) pass = false;
    return `${delay ?? "no"} ms (bounds ${low}-${high})`;
  });
  return outcome(pass, detail, "Backoff Not Activated");
}

/** The provider received no event request before the `backoff_until` of the failure before it. */
export function checkNoEarlyRetry(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  if (failed.length === 0) {
    return outcome(false, "no failure to compare retries with", "Backoff Not Activated");
  }
  const early: string[] = [];
  failed.forEach((run, i) => {
    const until = run.end?.state.backoffUntil?.getTime() ?? null;
    const next = evidence.runs[i + 1];
    if (until === null || run.end === null) return early.push(`#${i + 1}: no backoff_until`);
    const requests = evidence.providerRequests.filter((r) =>
      r.at > run.end!.at + CLOCK_SLACK_MS && r.at < until - CLOCK_SLACK_MS
    );
    if (requests.length > 0) early.push(`#${i + 1}: ${requests.length} requests before it`);
    if (next && next.claimedAt < until - 1) {
      early.push(`#${i + 1}: next claim ${until - next.claimedAt} ms before backoff_until`);
    }
  });
  return outcome(
    early.length === 0,
    early.length === 0
      ? each(failed, (run, n) => {
        const next = evidence.runs[n];
        const until = run.end?.state.backoffUntil?.getTime() ?? 0;
        return next ? `retried ${next.claimedAt - until} ms after backoff_until` : "no retry";
      })
      : early.join("; "),
    "Backoff Not Activated",
  );
}

/** The backoff after a 429 lasts the whole Retry-After, though it is longer than the maximum. */
export function checkRetryAfterHonoured(evidence: ApiOutageEvidence): CheckOutcome {
  const asked = evidence.retryAfterMs;
  if (asked === null) return outcome(false, "no Retry-After was injected", null);
  const run = failedRuns(evidence)[0];
  const failedAt = evidence.providerRequests.find((r) => r.status === evidence.injectedStatus)?.at;
  const until = run?.end?.state.backoffUntil?.getTime() ?? null;
  if (run === undefined || until === null || failedAt === undefined) {
    return outcome(false, `backoff_until=${when(until)}`, "Backoff Not Activated");
  }
  const granted = until - failedAt;
  const retry = evidence.providerRequests.find((r) => r.at > failedAt);
  const waited = retry === undefined ? null : retry.at - failedAt;
  const record = (run.end?.state.lastError ?? {}) as Record<string, unknown>;
  // last_error.retry_after_ms is shown, not required: a missing last_error is checked (as
  // Silent Failures) by the details check; here only the wait itself counts.
  const pass = granted >= asked - CLOCK_SLACK_MS &&
    (waited === null || waited >= asked - CLOCK_SLACK_MS);
  return outcome(
    pass,
    `Retry-After ${asked} ms (maximum backoff ${evidence.backoff.maxMs} ms); backoff_until ` +
      `${granted} ms after the 429; next request ${waited ?? "none"} ms after it; ` +
      `last_error.retry_after_ms=${record.retry_after_ms ?? null}`,
    "Backoff Not Activated",
  );
}

/** The failed runs wrote no event row (insert, update or delete). */
export function checkEventsUntouched(evidence: ApiOutageEvidence): CheckOutcome {
  return outcome(
    evidence.eventWrites === 0,
    `${evidence.eventRows} rows before; ${evidence.eventWrites} event rows written by the ` +
      "failed runs",
    "Partial State Written",
  );
}

/** After the last backoff the daemon retried by itself (no request since) and succeeded. */
export function checkRetriedByItself(evidence: ApiOutageEvidence): CheckOutcome {
  const failed = failedRuns(evidence);
  const run = recoveryRun(evidence);
  const until = failed.at(-1)?.end?.state.backoffUntil?.getTime() ?? null;
  const own = evidence.runs.slice(1).filter((r) => r.requestsBefore === 0).length;
  const pass = run !== null && run.requestsBefore === 0 && failed.length > 0 &&
    (until === null || run.claimedAt >= until - 1);
  return outcome(
    pass,
    run === null
      ? `no successful run after ${failed.length} failures; ${own} retries by the daemon itself`
      : `${own} retries by the daemon itself; the one after the last backoff claimed ` +
        `${until === null ? "?" : run.claimedAt - until} ms after backoff_until, ` +
        `${run.requestsBefore} sync requests before it`,
    "Backoff Not Activated",
  );
}
