/** @module Records failed channel work: backoff on the row, a log line and a metric. */
import { type ChannelRow, recordChannelFailure } from "../storage/webhook_channels.ts";
import { logger } from "../log/setup.ts";
import { backoffDelayMs } from "../failures/backoff.ts";
import { classifyThrown } from "../failures/classify.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { ChannelWork } from "./channel_deps.ts";

const log = logger("channels");

// A calendar that cannot push (holidays, birthdays) says so every time; ask again once a day.
const PUSH_UNSUPPORTED_RETRY_MS = 24 * 3_600_000;

/**
 * Records a failed create, renew or stop on its row: backoff like a sync failure (at least
 * Retry-After), one log line, and `calendar_sync_failures_total{provider, reason}` + 1.
 * Database errors are rethrown, since they are not the provider's.
 */
export async function recordChannelWorkFailure(
  work: ChannelWork,
  row: ChannelRow,
  what: { operation: "create" | "renew" | "stop"; error: unknown },
): Promise<void> {
  const { deps, connection } = work;
  const failure = classifyThrown(what.error);
  // Shutdown cancelled the call: not the provider's fault, and the next pass starts over.
  if (work.signal.aborted) return;
  // A database error is not the provider's: let the pass log it and let the lease lapse.
  if (failure.kind === "database" && !(what.error instanceof SyncFailure)) throw what.error;
  if (await deps.gate?.settle(connection, failure.kind) === "hold") {
    deps.metrics.syncFailures.inc({ provider: connection.providerKind, reason: failure.kind });
    log.warn(
      "Channel {operation} for connection {connection_id} failed: {kind}; held while the " +
        "provider's circuit breaker is open",
      {
        connection_id: connection.id,
        provider: connection.providerKind,
        operation: what.operation,
        kind: failure.kind,
        status: failure.status ?? null,
        error: failure.message,
        channel_id: row.channel_id,
      },
    );
    return;
  }
  const attempt = row.error_count + 1;
  let delayMs = backoffDelayMs({
    attempt,
    baseMs: deps.backoffBaseMs,
    maxMs: deps.backoffMaxMs,
    retryAfterMs: failure.retryAfterMs,
    random: deps.random?.(),
  });
  if (failure.providerCode === "pushNotSupportedForRequestedResource") {
    delayMs = Math.max(delayMs, PUSH_UNSUPPORTED_RETRY_MS);
  }
  deps.metrics.syncFailures.inc({ provider: connection.providerKind, reason: failure.kind });
  const lastError = {
    kind: failure.kind,
    operation: what.operation,
    status: failure.status ?? null,
    provider_code: failure.providerCode ?? null,
    message: failure.message,
    at: new Date().toISOString(),
    attempt,
  };
  const retryAt = await recordChannelFailure(deps.sql, row.id, { lastError, delayMs });
  log.error("Channel {operation} for connection {connection_id} failed: {kind}", {
    connection_id: connection.id,
    provider: connection.providerKind,
    operation: what.operation,
    kind: failure.kind,
    status: failure.status ?? null,
    provider_code: failure.providerCode ?? null,
    attempt,
    error: failure.message,
    backoff_ms: delayMs,
    backoff_until: retryAt,
    channel_id: row.channel_id,
  });
}
