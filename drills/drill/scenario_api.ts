/**
 * @module Scenario 1: the provider's API answers 503 for several attempts in a row (then 429 with
 * a Retry-After beyond the maximum backoff), and recovers. One trigger starts each outage (the
 * operator's `calsync sync`; the change at the provider sends no webhook), so every later run is
 * the daemon's own retry, and each failure is judged by the row as that failure left it.
 */
import { auditMark, connectionHistory, eventWrites } from "./audit.ts";
import {
  checkBackoffGrows,
  checkBackoffSet,
  checkConsecutiveFailures,
  checkErrorCounted,
  checkEventsUntouched,
  checkFailuresLogged,
  checkLastErrorDetails,
  checkNoEarlyRetry,
  checkOneTrigger,
  checkRetriedByItself,
  checkRetryAfterHonoured,
  checkSyncStillNeeded,
} from "./checks_api.ts";
import {
  checkBackoffCleared,
  checkDaemonAlive,
  checkErrorCountReset,
  checkMetricIncreased,
  checkMirrorMatchesProvider,
  checkRecoverySync,
} from "./checks_common.ts";
import { DAEMON_SETTINGS, type DrillConnection, type DrillEnvironment } from "./environment.ts";
import type { ApiOutageEvidence, ProviderKind, RecoveryEvidence } from "./evidence.ts";
import { createRecorder, emptyResult, type Recorder, type ScenarioResult } from "./records.ts";
import { failedRuns, recoveryRun, toRuns } from "./runs.ts";
import {
  collectRecovery,
  failureCount,
  isFailureLine,
  isSuccessLine,
  operatorSync,
  selector,
  waitIdle,
} from "./scenario_support.ts";
import { databaseNow, readConnection, snapshotEvents } from "./snapshot.ts";
import { waitFor } from "../../testkit/wait.ts";
import { apiOutageEvents, recoveryEvents } from "./timeline.ts";

type Variant = {
  name: string;
  status: number;
  retryAfterSeconds: number | null;
  expectedKind: string;
  /** Event requests the fake fails in a row before it answers normally again. */
  failures: number;
  /** The 503 run checks everything; the 429 run what differs (Retry-After) and recovery. */
  full: boolean;
};

const BACKOFF = {
  baseMs: Number(DAEMON_SETTINGS.SYNC_BACKOFF_BASE_MS),
  maxMs: Number(DAEMON_SETTINGS.SYNC_BACKOFF_MAX_MS),
};

const VARIANTS: readonly Variant[] = [
  {
    name: "503",
    status: 503,
    retryAfterSeconds: null,
    expectedKind: "provider_unavailable",
    failures: 3,
    full: true,
  },
  {
    name: "429",
    status: 429,
    // Longer than the maximum backoff: only a daemon that honours it in full waits this long.
    retryAfterSeconds: Math.ceil(BACKOFF.maxMs / 1000) + 1,
    expectedKind: "rate_limited",
    failures: 1,
    full: false,
  },
];

// The longest a healthy daemon takes to fail `failures` times and recover: every backoff at its
// ceiling or the Retry-After, plus slack for polls and a busy machine. A bound for broken daemons.
function recoveryTimeoutMs(variant: Variant): number {
  let total = (variant.retryAfterSeconds ?? 0) * 1000;
  for (let n = 1; n <= variant.failures; n++) {
    total += Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** (n - 1));
  }
  return total + 8_000;
}

/** Runs one outage from its one trigger until the daemon's own retry succeeded (or never did). */
async function collectOutage(
  env: DrillEnvironment,
  c: DrillConnection,
  variant: Variant,
): Promise<ApiOutageEvidence> {
  const provider = env.providers.get(c.kind)!;
  const sql = env.db.adminSql;
  await waitIdle(env, c);
  const labels = { provider: c.kind, reason: variant.expectedKind };
  const before = await readConnection(sql, c.connectionId);
  const successBefore = before?.lastSuccessAt?.getTime() ?? null;
  const eventRows = (await snapshotEvents(sql, c.connectionId)).length;
  const failuresBefore = await failureCount(env, labels);
  const mark = await auditMark(sql);
  const startedAt = await databaseNow(sql);
  const logMark = env.daemon.mark();
  const requestMark = provider.requestMark();
  const retryAfter = variant.retryAfterSeconds;
  provider.setFault(
    {
      kind: "status",
      status: variant.status,
      ...(retryAfter === null ? {} : { retryAfter: String(retryAfter) }),
    },
    // Scoped to this calendar: another connection's sync must not use the failures up.
    { target: "api", times: variant.failures, calendar: c.calendar },
  );
  try {
    provider.putEventQuietly(c.calendar, `API outage ${variant.name} change`);
    await operatorSync(env, c);
    const history = async () => toRuns(await connectionHistory(sql, c.connectionId, mark));
    // Wait for the daemon's own successful retry; a broken daemon may never make one.
    await waitFor(async () => recoveryRun({ runs: await history(), successBefore }) !== null, {
      timeoutMs: recoveryTimeoutMs(variant),
      intervalMs: 50,
    });
    const runs = await history();
    const recovered = recoveryRun({ runs, successBefore });
    const [first] = await connectionHistory(sql, c.connectionId, mark);
    return {
      injectedStatus: variant.status,
      expectedKind: variant.expectedKind,
      retryAfterMs: retryAfter === null ? null : retryAfter * 1000,
      injectedFailures: variant.failures,
      backoff: BACKOFF,
      connectionId: c.connectionId,
      successBefore,
      errorsBefore: before?.errorCount ?? 0,
      triggers: first?.requests ?? 0,
      runs,
      failureLogs: env.daemon.logsSince(logMark).filter(isFailureLine(c.connectionId)),
      providerRequests: provider.apiRequests(c.calendar, requestMark),
      failuresBefore,
      failuresAfter: await failureCount(env, labels),
      eventRows,
      eventWrites: await eventWrites(sql, c.connectionId, {
        from: startedAt,
        to: recovered?.claimedAt ?? await databaseNow(sql),
      }),
    };
  } finally {
    // Restore the API: a daemon that never retried left failures unused.
    provider.setFault(null, { target: "api" });
  }
}

function recordOutage(rec: Recorder, variant: Variant, e: ApiOutageEvidence, kind: ProviderKind) {
  rec.check("outage", "one trigger: the operator's calsync sync", checkOneTrigger(e));
  rec.check(
    "outage",
    "sync failed gracefully: a JSON log line per failure",
    checkFailuresLogged(e),
  );
  if (variant.full) {
    rec.check(
      "outage",
      `${variant.failures} consecutive failures, each retried by the daemon`,
      checkConsecutiveFailures(e),
    );
    rec.check("outage", "backoff_until set in the future", checkBackoffSet(e));
    rec.check("outage", "error_count > 0", checkErrorCounted(e));
    rec.check("outage", "last_error is JSONB with the error details", checkLastErrorDetails(e));
    rec.check("outage", "sync_needed still true", checkSyncStillNeeded(e));
    rec.check("outage", "backoff delays grow within the jitter bounds", checkBackoffGrows(e));
  } else {
    rec.check("outage", "Retry-After honoured in full", checkRetryAfterHonoured(e));
  }
  const metric = selector({ provider: kind, reason: variant.expectedKind });
  rec.check(
    "outage",
    `${metric} went up once per failure`,
    checkMetricIncreased({
      metric,
      before: e.failuresBefore,
      after: e.failuresAfter,
      expected: failedRuns(e).length,
    }),
  );
  if (variant.full) {
    rec.check("outage", "events untouched by the failed runs", checkEventsUntouched(e));
  }
  rec.check("outage", "no retry before backoff_until", checkNoEarlyRetry(e));
}

async function runVariant(
  env: DrillEnvironment,
  c: DrillConnection,
  variant: Variant,
  result: ScenarioResult,
): Promise<void> {
  const rec = createRecorder({ scenario: "api", variant: variant.name, provider: c.kind }, result);
  const sql = env.db.adminSql;
  const logMark = env.daemon.mark();
  const evidence = await collectOutage(env, c, variant);
  await rec.verify("outage", sql, c.providerId);
  recordOutage(rec, variant, evidence, c.kind);
  rec.check(
    "outage",
    "daemon stayed up",
    checkDaemonAlive({ daemonAlive: env.daemon.alive(), healthStatus: await env.daemon.health() }),
  );

  // Recovery, as the document has it: the backoff expired and the daemon retried by itself
  // (judged on the row that retry left); then the operator triggers a sync, which succeeds.
  const own = recoveryRun(evidence);
  const ownRecovery: RecoveryEvidence = {
    successLog: env.daemon.logsSince(logMark).find(isSuccessLine(c.connectionId)) ?? null,
    row: own?.end?.state ?? null,
    mirror: [],
    provider: [],
  };
  const operatorMark = env.daemon.mark();
  await operatorSync(env, c);
  const operator = await collectRecovery(env, c, operatorMark, 10_000);
  rec.check(
    "recovery",
    "the daemon retried by itself after the backoff",
    checkRetriedByItself(evidence),
  );
  if (variant.full) {
    rec.check("recovery", "backoff_until cleared", checkBackoffCleared(ownRecovery));
    rec.check("recovery", "error_count reset", checkErrorCountReset(ownRecovery));
  }
  rec.check(
    "recovery",
    "the operator's calsync sync succeeded",
    checkRecoverySync(operator, "Silent Failures"),
  );
  rec.check("recovery", "events match the provider", checkMirrorMatchesProvider(operator));
  await rec.verify("recovery", sql, c.providerId);
  rec.timeline([
    ...apiOutageEvents(evidence),
    ...recoveryEvents(operator.successLog).map((e) => ({
      ...e,
      label: "operator's sync succeeded",
    })),
  ]);
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
