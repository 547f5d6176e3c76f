/** @module Scenario 1: the provider's API answers 503 (then 429 with Retry-After), and recovers. */
import {
  checkBackoffSet,
  checkErrorCounted,
  checkLastErrorDetails,
  checkNoEarlyRetry,
  checkRetryAfterHonoured,
  checkSyncStillNeeded,
} from "./checks_api.ts";
import {
  checkBackoffCleared,
  checkDaemonAlive,
  checkErrorCountReset,
  checkEventsUnchanged,
  checkFailureLogged,
  checkMetricIncreased,
  checkMirrorMatchesProvider,
  checkRecoverySync,
} from "./checks_common.ts";
import { DAEMON_SETTINGS, type DrillConnection, type DrillEnvironment } from "./environment.ts";
import type { ApiOutageEvidence, ProviderKind } from "./evidence.ts";
import { createRecorder, emptyResult, type ScenarioResult } from "./records.ts";
import {
  collectRecovery,
  failureCount,
  isFailureLine,
  operatorSync,
  selector,
  waitIdle,
} from "./scenario_support.ts";
import { databaseNow, readConnection, snapshotEvents } from "./snapshot.ts";
import { waitFor } from "../../testkit/wait.ts";

type Variant = {
  name: string;
  status: number;
  retryAfterSeconds: number | null;
  expectedKind: string;
  /** The 503 run checks everything; the 429 run what differs (Retry-After) and recovery. */
  full: boolean;
};

const VARIANTS: readonly Variant[] = [
  {
    name: "503",
    status: 503,
    retryAfterSeconds: null,
    expectedKind: "provider_unavailable",
    full: true,
  },
  { name: "429", status: 429, retryAfterSeconds: 2, expectedKind: "rate_limited", full: false },
];

// Longest wait for the retry after the backoff: the backoff cap, Retry-After, and slack.
const RECOVERY_TIMEOUT_MS = Number(DAEMON_SETTINGS.SYNC_BACKOFF_MAX_MS) + 8_000;

async function runVariant(
  env: DrillEnvironment,
  c: DrillConnection,
  variant: Variant,
  result: ScenarioResult,
): Promise<void> {
  const rec = createRecorder({ scenario: "api", variant: variant.name, provider: c.kind }, result);
  const provider = env.providers.get(c.kind)!;
  const sql = env.db.adminSql;
  await waitIdle(env, c);
  const labels = { provider: c.kind, reason: variant.expectedKind };
  const eventsBefore = await snapshotEvents(sql, c.connectionId);
  const failuresBefore = await failureCount(env, labels);
  const errorsBefore = (await readConnection(sql, c.connectionId))?.errorCount ?? 0;

  provider.setFault(
    {
      kind: "status",
      status: variant.status,
      ...(variant.retryAfterSeconds === null
        ? {}
        : { retryAfter: String(variant.retryAfterSeconds) }),
    },
    { target: "api" },
  );
  const logMark = env.daemon.mark();
  const requestMark = provider.requestMark();
  // A change waits at the provider, and the operator asks for a sync (a webhook may too).
  // The row is read the moment the failure is in it, watched from before anything can fail:
  // the drill's backoff (0.75 s and up) can expire while the CLI runs or the log line travels,
  // and the daemon's retry then overwrites the row the outage checks judge.
  const failed = waitFor(async () => {
    const row = await readConnection(sql, c.connectionId);
    if (row === null || row.errorCount <= errorsBefore) return null;
    return { row, readAt: await databaseNow(sql) };
  }, { timeoutMs: 8_000, intervalMs: 10 });
  provider.putEvent(c.calendar, `API outage ${variant.name} change`);
  await operatorSync(env, c);
  const failureLog = await env.daemon.waitForLog(isFailureLine(c.connectionId), {
    since: logMark,
    timeoutMs: 8_000,
  });
  const failure = await failed;
  const readAt = failure?.readAt ?? await databaseNow(sql);
  const row = failure?.row ?? await readConnection(sql, c.connectionId);
  const eventsAfter = await snapshotEvents(sql, c.connectionId);
  const failuresAfter = await failureCount(env, labels);
  await rec.verify("outage", sql, c.providerId);

  // Recovery: restore the API, and an impatient operator triggers again during the backoff,
  // which must still be waited out; the daemon retries once backoff_until has passed.
  provider.setFault(null, { target: "api" });
  await operatorSync(env, c);
  const recovery = await collectRecovery(env, c, logMark, RECOVERY_TIMEOUT_MS);
  const requests = provider.apiRequestTimes(c.calendar, requestMark);
  const evidence: ApiOutageEvidence = {
    injectedStatus: variant.status,
    expectedKind: variant.expectedKind,
    retryAfterMs: variant.retryAfterSeconds === null ? null : variant.retryAfterSeconds * 1000,
    connectionId: c.connectionId,
    failureLog,
    failedAt: requests[0] ?? null,
    row,
    readAt,
    failuresBefore,
    failuresAfter,
    eventsBefore,
    eventsAfter,
    retryRequestTimes: requests.slice(1),
  };

  rec.check(
    "outage",
    "sync failed gracefully: structured JSON log line",
    checkFailureLogged(evidence),
  );
  if (variant.full) {
    rec.check("outage", "backoff_until set in the future", checkBackoffSet(evidence));
    rec.check("outage", "error_count > 0", checkErrorCounted(evidence));
    rec.check(
      "outage",
      "last_error is JSONB with the error details",
      checkLastErrorDetails(evidence),
    );
    rec.check("outage", "sync_needed still true", checkSyncStillNeeded(evidence));
  } else {
    rec.check("outage", "Retry-After honoured", checkRetryAfterHonoured(evidence));
  }
  rec.check(
    "outage",
    `${selector(labels)} went up`,
    checkMetricIncreased({
      metric: selector(labels),
      before: failuresBefore,
      after: failuresAfter,
    }),
  );
  if (variant.full) {
    rec.check("outage", "events byte-for-byte unchanged", checkEventsUnchanged(evidence));
  }
  rec.check("outage", "no retry before backoff_until", checkNoEarlyRetry(evidence));
  rec.check(
    "outage",
    "daemon stayed up",
    checkDaemonAlive({ daemonAlive: env.daemon.alive(), healthStatus: await env.daemon.health() }),
  );
  rec.check(
    "recovery",
    "sync succeeded after the backoff",
    checkRecoverySync(recovery, "Backoff Not Activated"),
  );
  if (variant.full) {
    rec.check("recovery", "backoff_until cleared", checkBackoffCleared(recovery));
    rec.check("recovery", "error_count reset", checkErrorCountReset(recovery));
  }
  rec.check("recovery", "events match the provider", checkMirrorMatchesProvider(recovery));
  await rec.verify("recovery", sql, c.providerId);
}

/** Runs the API outage scenario (503, then 429 with Retry-After) for one provider. */
export async function runApiScenario(
  env: DrillEnvironment,
  kind: ProviderKind,
): Promise<ScenarioResult> {
  const result = emptyResult();
  const c = env.connection("api", kind);
  for (const variant of VARIANTS) await runVariant(env, c, variant, result);
  return result;
}
