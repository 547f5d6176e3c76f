/** @module Records a failed sync: backoff state on the row, one log line, one metric. */
import { backoffDelayMs } from "../failures/backoff.ts";
import type { SyncFailure } from "../failures/failure.ts";
import { logger } from "../log/setup.ts";
import { markAccountReauthRequired } from "../storage/accounts.ts";
import {
  type ClaimedConnection,
  markTerminal,
  recordSyncFailure,
  releaseLease,
  type TerminalState,
} from "../storage/connections.ts";
import { rejectionStep } from "./rejections.ts";
import type { SyncDeps, SyncOutcome } from "./sync_deps.ts";

const log = logger("sync");

type FailureFields = Record<string, unknown>;

/** Records `failure` for `connection`; never throws (a database error is logged and counted). */
export async function recordFailure(
  deps: SyncDeps,
  connection: ClaimedConnection,
  failure: SyncFailure,
): Promise<SyncOutcome> {
  const provider = connection.providerKind;
  const attempt = connection.errorCount + 1;
  deps.metrics.syncFailures.inc({ provider, reason: failure.kind });
  deps.metrics.syncRuns.inc({ provider, outcome: "failure" });
  const fields: FailureFields = {
    connection_id: connection.id,
    provider,
    provider_name: connection.providerName,
    kind: failure.kind,
    status: failure.status ?? null,
    provider_code: failure.providerCode ?? null,
    attempt,
    error: failure.message,
  };
  if (failure.kind === "database" || failure.kind === "lease_lost") {
    // Says nothing about the provider; a probe that ended so gives its slot back.
    await deps.providerGate?.settle(connection, failure.kind);
    return await handBackLease(deps, connection, failure, fields);
  }
  if (await deps.providerGate?.settle(connection, failure.kind) === "hold") {
    return await holdForBreaker(deps, connection, failure, fields);
  }
  try {
    return await recordBackoff(deps, connection, failure, fields, attempt);
  } catch (error) {
    deps.metrics.syncFailures.inc({ provider, reason: "database" });
    log.error("Cannot record the failed sync of connection {connection_id}: database error", {
      ...fields,
      backoff_until: null,
      record_error: error,
    });
    return { outcome: "failure", kind: "database", backoffUntil: null };
  }
}

/** Nothing of the run was committed: hand the lease back so it runs again once the database is. */
async function handBackLease(
  deps: SyncDeps,
  connection: ClaimedConnection,
  failure: SyncFailure,
  fields: FailureFields,
): Promise<SyncOutcome> {
  // If this fails too, the lease simply expires.
  const released = await releaseLease(deps.sql, connection, deps.dbRetryBaseMs).then(
    () => true,
    () => false,
  );
  log.error("Sync of connection {connection_id} failed: {kind}", {
    ...fields,
    backoff_until: null,
    lease_released: released,
  });
  return { outcome: "failure", kind: failure.kind, backoffUntil: null };
}

/**
 * The provider's breaker is open: the outage is the provider's, not this connection's. Its
 * error count and backoff stay as they were; the lease goes back and the connection waits,
 * due, until the breaker lets its provider be claimed again.
 */
async function holdForBreaker(
  deps: SyncDeps,
  connection: ClaimedConnection,
  failure: SyncFailure,
  fields: FailureFields,
): Promise<SyncOutcome> {
  deps.metrics.breakerHeld.inc({ provider: connection.providerKind });
  const released = await releaseLease(deps.sql, connection).then(() => true, () => false);
  log.warn(
    "Sync of connection {connection_id} failed: {kind}; provider breaker open, not counted",
    {
      ...fields,
      attempt: connection.errorCount,
      backoff_until: null,
      breaker_held: true,
      lease_released: released,
    },
  );
  return { outcome: "failure", kind: failure.kind, backoffUntil: null };
}

/** Stores `last_error` and the backoff (or `reauth_required`), fenced by the lease. */
async function recordBackoff(
  deps: SyncDeps,
  connection: ClaimedConnection,
  failure: SyncFailure,
  fields: FailureFields,
  attempt: number,
): Promise<SyncOutcome> {
  const lastError = {
    kind: failure.kind,
    status: failure.status ?? null,
    provider_code: failure.providerCode ?? null,
    message: failure.message,
    provider: connection.providerKind,
    at: new Date().toISOString(),
    attempt,
    retry_after_ms: failure.retryAfterMs ?? null,
  };
  const rejection = failure.kind === "provider_rejected"
    ? rejectionStep(connection, deps.maxRejections)
    : null;
  const terminal: TerminalState | null = failure.kind === "reauth_required"
    ? "reauth_required"
    : failure.kind === "calendar_unavailable"
    ? "calendar_unavailable"
    : rejection?.disable
    ? "disabled"
    : null;
  if (terminal !== null) {
    return await enterTerminal(deps, connection, terminal, {
      ...lastError,
      rejections: rejection?.rejections ?? null,
    }, fields);
  }
  const delayMs = backoffDelayMs({
    attempt,
    baseMs: deps.backoffBaseMs,
    maxMs: deps.backoffMaxMs,
    retryAfterMs: failure.retryAfterMs,
    random: deps.random?.(),
  });
  const recorded = await recordSyncFailure(deps.sql, connection, {
    lastError: {
      ...lastError,
      backoff_ms: delayMs,
      ...(rejection && { rejections: rejection.rejections, full_sync: rejection.fullSync }),
    },
    delayMs,
    // After repeated rejections the cursor may be what the provider rejects: try a full sync.
    clearCursor: failure.kind === "cursor_expired" || rejection?.fullSync === true,
  });
  log.error("Sync of connection {connection_id} failed: {kind}", {
    ...fields,
    ...(rejection && { rejections: rejection.rejections, cursor_dropped: rejection.fullSync }),
    backoff_ms: delayMs,
    backoff_until: recorded?.backoffUntil ?? null,
    lease_lost: recorded === null,
  });
  return { outcome: "failure", kind: failure.kind, backoffUntil: recorded?.backoffUntil ?? null };
}

const TERMINAL_MESSAGES: Record<TerminalState, string> = {
  reauth_required: "Connection {connection_id} needs re-authorisation; syncing stopped",
  calendar_unavailable:
    "Calendar of connection {connection_id} is gone or no longer shared; syncing stopped, rows kept",
  disabled: "Connection {connection_id} disabled after repeated rejections; syncing stopped",
};

/** A transition into a terminal state: the row, one error line, the transition counter. */
async function enterTerminal(
  deps: SyncDeps,
  connection: ClaimedConnection,
  state: TerminalState,
  lastError: Record<string, unknown>,
  fields: FailureFields,
): Promise<SyncOutcome> {
  const marked = await markTerminal(deps.sql, connection, state, lastError);
  if (marked !== null && state === "reauth_required" && connection.accountId) {
    // One refresh token serves the whole account: every calendar of it needs the new consent.
    await markAccountReauthRequired(deps.sql, connection.accountId, lastError);
  }
  if (marked !== null) {
    deps.metrics.terminalTransitions.inc({ provider: connection.providerKind, state });
  }
  log.error(TERMINAL_MESSAGES[state], {
    ...fields,
    state,
    rejections: lastError.rejections ?? null,
    backoff_until: null,
    lease_lost: marked === null,
  });
  return { outcome: "failure", kind: state, backoffUntil: null };
}
