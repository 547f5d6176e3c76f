/** @module Turns a connection's audit trail into sync runs, and tells failed runs from good ones. */
import type { AuditEntry } from "./audit.ts";
import type { ApiOutageEvidence, SyncRun } from "./evidence.ts";

/** The runs of an outage and the last success before it: all that tells the runs apart. */
export type RunHistory = Pick<ApiOutageEvidence, "runs" | "successBefore">;

/**
 * Sync runs in an audit trail: a claim turns the lease owner from null into an owner, the run's
 * last write (success or failure) turns it back. Requests are counted between runs, so a run
 * with `requestsBefore` 0 was started by the daemon alone.
 */
export function toRuns(entries: readonly AuditEntry[]): SyncRun[] {
  const runs: SyncRun[] = [];
  let open: SyncRun | null = null;
  let requests = 0;
  for (const entry of entries) {
    requests += entry.requests;
    if (entry.oldLeaseOwner === null && entry.state.leaseOwner !== null) {
      open = { claimedAt: entry.txAt, requestsBefore: requests, end: null };
      runs.push(open);
      requests = 0;
    } else if (open !== null && entry.oldLeaseOwner !== null && entry.state.leaseOwner === null) {
      open.end = { at: entry.txAt, state: entry.state };
      open = null;
    }
  }
  return runs;
}

/** True when the run ended and left `last_success_at` where it was: it failed. */
function failed(run: SyncRun, successBefore: number | null): boolean {
  return run.end !== null && (run.end.state.lastSuccessAt?.getTime() ?? null) === successBefore;
}

/** The failed runs before the first successful one. */
export function failedRuns(evidence: RunHistory): SyncRun[] {
  const out: SyncRun[] = [];
  for (const run of evidence.runs) {
    if (!failed(run, evidence.successBefore)) break;
    out.push(run);
  }
  return out;
}

/** The first run that succeeded after the failures, if any. */
export function recoveryRun(evidence: RunHistory): SyncRun | null {
  const run = evidence.runs[failedRuns(evidence).length];
  return run !== undefined && run.end !== null ? run : null;
}

/** The delay a failed run granted: `backoff_until` minus its own transaction time (ms). */
export function grantedDelay(run: SyncRun): number | null {
  const until = run.end?.state.backoffUntil ?? null;
  return until === null || run.end === null ? null : until.getTime() - run.end.at;
}

/** The backoff's jitter bounds for the n-th failure in a row: half to all of the ceiling. */
export function jitterBounds(
  attempt: number,
  backoff: { baseMs: number; maxMs: number },
): { low: number; high: number } {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** (attempt - 1));
  return { low: Math.round(ceiling / 2), high: ceiling };
}
