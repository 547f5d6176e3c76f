import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
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
} from "../../drills/drill/checks_api.ts";
import {
  checkConnectionUntouched,
  checkDaemonAlive,
  checkEventsUnchanged,
  checkMetricIncreased,
  checkMirrorMatchesProvider,
} from "../../drills/drill/checks_common.ts";
import {
  checkDatabaseErrorLogged,
  checkFailedFast,
  checkWebhookRejected,
  WEBHOOK_UNAVAILABLE,
} from "../../drills/drill/checks_database.ts";
import {
  checkNoSecondSync,
  checkOneSync,
  checkProcessedOnce,
  checkProviderRetried,
} from "../../drills/drill/checks_webhook.ts";
import type { CheckOutcome } from "../../drills/drill/diagnosis.ts";
import type {
  ApiOutageEvidence,
  ConnectionState,
  DatabaseOutageEvidence,
  LogLine,
  SyncRun,
  WebhookOutageEvidence,
} from "../../drills/drill/evidence.ts";
import { buildReport, renderResultsBlock } from "../../drills/drill/report.ts";
import { createRecorder, emptyResult } from "../../drills/drill/records.ts";
import { parseSamples, sumSamples } from "../../testkit/prometheus_text.ts";

const NOW = Date.parse("2026-01-02T10:00:00Z");
const EVENTS = ['e1 | "1" | confirmed | Standup', 'e2 | "2" | confirmed | Review'];

function row(overrides: Partial<ConnectionState> = {}): ConnectionState {
  return {
    errorCount: 1,
    lastError: { kind: "provider_unavailable", status: 503, message: "google answered HTTP 503" },
    backoffUntil: new Date(NOW + 1_200),
    syncNeeded: true,
    lastSuccessAt: new Date(NOW - 60_000),
    syncCursor: { position: { syncToken: "t1" } },
    status: "active",
    leaseOwner: null,
    ...overrides,
  };
}

const SUCCESS_BEFORE = NOW - 60_000;
// A healthy daemon's delays for the first three failures in a row (base 500 ms, max 2000 ms).
const DELAYS = [400, 900, 1_800];

function failedRun(n: number, at: number, overrides: Partial<ConnectionState> = {}): SyncRun {
  return {
    claimedAt: at - 30,
    requestsBefore: n === 1 ? 1 : 0,
    end: {
      at,
      state: row({
        errorCount: n,
        backoffUntil: new Date(at + DELAYS[n - 1]),
        lastSuccessAt: new Date(SUCCESS_BEFORE),
        ...overrides,
      }),
    },
  };
}

/** Three failed runs, each retried by the daemon after its backoff, then a successful one. */
function healthyRuns(): SyncRun[] {
  const runs: SyncRun[] = [];
  let at = NOW;
  for (let n = 1; n <= 3; n++) {
    runs.push(failedRun(n, at));
    at += DELAYS[n - 1] + 100;
  }
  runs.push({
    claimedAt: at - 30,
    requestsBefore: 0,
    end: {
      at,
      state: row({
        errorCount: 0,
        backoffUntil: null,
        lastError: null,
        lastSuccessAt: new Date(at),
      }),
    },
  });
  return runs;
}

function failureLine(run: SyncRun, attempt: number): LogLine {
  return {
    level: "error",
    kind: "provider_unavailable",
    connection_id: "c1",
    provider: "google",
    status: 503,
    attempt,
    backoff_until: run.end!.state.backoffUntil?.toISOString() ?? null,
  };
}

/** What a healthy daemon leaves behind after three 503s in a row from the provider. */
function healthyApi(overrides: Partial<ApiOutageEvidence> = {}): ApiOutageEvidence {
  const runs = overrides.runs ?? healthyRuns();
  return {
    injectedStatus: 503,
    expectedKind: "provider_unavailable",
    retryAfterMs: null,
    injectedFailures: 3,
    backoff: { baseMs: 500, maxMs: 2_000 },
    connectionId: "c1",
    successBefore: SUCCESS_BEFORE,
    errorsBefore: 0,
    triggers: 1,
    runs,
    failureLogs: runs.filter((run) => run.end?.state.lastSuccessAt?.getTime() === SUCCESS_BEFORE)
      .map((run, i) => failureLine(run, i + 1)),
    providerRequests: runs.map((run, i) => ({ at: run.claimedAt + 10, status: i < 3 ? 503 : 200 })),
    failuresBefore: 0,
    failuresAfter: 3,
    eventRows: 2,
    eventWrites: 0,
    ...overrides,
  };
}

/** The healthy runs with the k-th failure (1-based) leaving `state` overrides. */
function withFailure(k: number, overrides: Partial<ConnectionState>): SyncRun[] {
  const runs = healthyRuns();
  runs[k - 1] = {
    ...runs[k - 1],
    end: { ...runs[k - 1].end!, state: { ...runs[k - 1].end!.state, ...overrides } },
  };
  return runs;
}

function healthyDatabase(overrides: Partial<DatabaseOutageEvidence> = {}): DatabaseOutageEvidence {
  return {
    connectionId: "c1",
    databaseLogs: [{
      level: "error",
      kind: "database",
      category: "calsync.webhooks",
      provider: "google",
      channel_id: "ch1",
      message_number: 7,
      message: "x",
    }],
    deliveryIds: ["google:ch1:7"],
    webhookAttempts: [{ attempt: 1, status: 503, at: NOW, ids: ["google:ch1:7"] }],
    webhookNote: "",
    webhookLatenciesMs: [12],
    failuresBefore: 3,
    failuresAfter: 5,
    eventsBefore: EVENTS,
    eventsAfter: EVENTS,
    markerRows: 0,
    rowBefore: row({ errorCount: 0, backoffUntil: null, lastError: null }),
    rowAfter: row({ errorCount: 0, backoffUntil: null, lastError: null }),
    daemonAlive: true,
    healthStatus: 200,
    command: { code: 1, stderr: "calsync: Cannot reach the database at h:1/db\n", durationMs: 300 },
    ...overrides,
  };
}

function healthyWebhook(overrides: Partial<WebhookOutageEvidence> = {}): WebhookOutageEvidence {
  return {
    attempts: [
      { attempt: 1, status: 503, at: NOW },
      { attempt: 2, status: "error", at: NOW + 100 },
      { attempt: 3, status: 200, at: NOW + 300 },
    ],
    note: "",
    keys: ["google:ch1:42"],
    acknowledged: 1,
    syncs: 1,
    apiRequests: 1,
    duplicate: { status: 200, newKeys: 0, syncs: 0, apiRequests: 0 },
    ...overrides,
  };
}

function assertFails(result: CheckOutcome, symptom: string | null): void {
  assertEquals(result.pass, false, `expected FAIL, got PASS: ${result.detail}`);
  assertEquals(result.diagnosis?.symptom ?? null, symptom, result.detail);
  if (symptom !== null) assert(result.diagnosis!.actions.length === 3, "the document's 3 actions");
}

Deno.test("a healthy daemon's evidence passes every API outage check", () => {
  const evidence = healthyApi();
  for (
    const check of [
      checkOneTrigger,
      checkFailuresLogged,
      checkConsecutiveFailures,
      checkBackoffSet,
      checkErrorCounted,
      checkLastErrorDetails,
      checkSyncStillNeeded,
      checkBackoffGrows,
      checkEventsUntouched,
      checkNoEarlyRetry,
      checkRetriedByItself,
    ]
  ) {
    const result = check(evidence);
    assert(result.pass, `${check.name}: ${result.detail}`);
    assertEquals(result.diagnosis, null);
  }
  assert(checkMetricIncreased({ metric: "m", before: 0, after: 1 }).pass);
  assert(checkMetricIncreased({ metric: "m", before: 0, after: 3, expected: 3 }).pass);
});

Deno.test("no backoff_until, or one not after the failure, is Backoff Not Activated", () => {
  assertFails(
    checkBackoffSet(healthyApi({ runs: withFailure(2, { backoffUntil: null }) })),
    "Backoff Not Activated",
  );
  // A backoff that ends the moment the failure is recorded is no backoff either.
  const runs = healthyRuns();
  runs[0].end!.state.backoffUntil = new Date(runs[0].end!.at);
  assertFails(checkBackoffSet(healthyApi({ runs })), "Backoff Not Activated");
});

Deno.test("a failed sync that clears sync_needed is never retried: Backoff Not Activated", () => {
  // One trigger, one failure that left sync_needed false, no run after it.
  const runs = [failedRun(1, NOW, { syncNeeded: false })];
  const evidence = healthyApi({ runs, failureLogs: [failureLine(runs[0], 1)], failuresAfter: 1 });
  for (const check of [checkSyncStillNeeded, checkConsecutiveFailures, checkRetriedByItself]) {
    assertFails(check(evidence), "Backoff Not Activated");
  }
  // The log line and the metric are right: one missing behaviour, one diagnosis.
  assert(checkFailuresLogged(evidence).pass);
  assert(checkMetricIncreased({ metric: "m", before: 0, after: 1, expected: 1 }).pass);
});

Deno.test("a backoff that never grows is Backoff Not Activated", () => {
  const runs = healthyRuns();
  for (const run of runs.slice(0, 3)) {
    run.end!.state.backoffUntil = new Date(run.end!.at + 400);
  }
  const result = checkBackoffGrows(healthyApi({ runs }));
  assertFails(result, "Backoff Not Activated");
  assertStringIncludes(result.detail, "#3 400 ms (bounds 1000-2000)");
});

Deno.test("a retry before backoff_until is Backoff Not Activated, with the early requests counted", () => {
  const evidence = healthyApi();
  const first = evidence.runs[0].end!;
  const result = checkNoEarlyRetry({
    ...evidence,
    providerRequests: [...evidence.providerRequests, { at: first.at + 50, status: 503 }],
  });
  assertFails(result, "Backoff Not Activated");
  assertStringIncludes(result.detail, "#1: 1 requests before it");
});

Deno.test("a retry started by a new sync request is not the daemon's own: Backoff Not Activated", () => {
  const runs = healthyRuns();
  runs[3].requestsBefore = 1;
  assertFails(checkRetriedByItself(healthyApi({ runs })), "Backoff Not Activated");
  // The drill's own evidence is suspect then too: it names no symptom of the daemon.
  assertFails(checkOneTrigger(healthyApi({ runs })), null);
});

Deno.test("error_count that does not count each failure is Backoff Not Activated", () => {
  assertFails(
    checkErrorCounted(healthyApi({ runs: withFailure(1, { errorCount: 0 }) })),
    "Backoff Not Activated",
  );
  assertFails(
    checkErrorCounted(healthyApi({ runs: withFailure(3, { errorCount: 1 }) })),
    "Backoff Not Activated",
  );
});

Deno.test("a Retry-After cut short at the maximum backoff is Backoff Not Activated", () => {
  const failed = failedRun(1, NOW, {
    backoffUntil: new Date(NOW + 2_000),
    lastError: { kind: "rate_limited", status: 429, message: "x", retry_after_ms: 3_000 },
  });
  const recovered = { claimedAt: NOW + 2_050, requestsBefore: 0, end: healthyRuns()[3].end };
  const evidence = healthyApi({
    injectedStatus: 429,
    expectedKind: "rate_limited",
    retryAfterMs: 3_000,
    injectedFailures: 1,
    runs: [failed, recovered],
    providerRequests: [{ at: NOW - 20, status: 429 }, { at: NOW + 2_060, status: 200 }],
  });
  const result = checkRetryAfterHonoured(evidence);
  assertFails(result, "Backoff Not Activated");
  assertStringIncludes(result.detail, "2020 ms after the 429");
  failed.end!.state.backoffUntil = new Date(NOW + 3_000);
  const honoured = {
    ...evidence,
    providerRequests: [{ at: NOW - 20, status: 429 }, { at: NOW + 3_050, status: 200 }],
  };
  assert(checkRetryAfterHonoured(honoured).pass, checkRetryAfterHonoured(honoured).detail);
});

Deno.test("a failure without its log line is Silent Failures, and only that", () => {
  const evidence = healthyApi();
  const missing = { ...evidence, failureLogs: evidence.failureLogs.slice(0, 2) };
  assertFails(checkFailuresLogged(missing), "Silent Failures");
  // Every other check reads the audit trail, not the log: no second, wrong diagnosis.
  for (const check of [checkBackoffSet, checkNoEarlyRetry, checkRetriedByItself]) {
    assert(check(missing).pass, check.name);
  }
  // A line without the architecture's fields (here: no backoff_until) is not structured enough.
  const { backoff_until: _, ...partial } = evidence.failureLogs[0];
  const result = checkFailuresLogged({
    ...evidence,
    failureLogs: [partial, ...evidence.failureLogs.slice(1)],
  });
  assertFails(result, "Silent Failures");
  assertStringIncludes(result.detail, "missing fields: backoff_until");
  assertFails(checkDatabaseErrorLogged(healthyDatabase({ databaseLogs: [] })), "Silent Failures");
});

Deno.test("failures not counted once each are Silent Failures", () => {
  assertFails(
    checkMetricIncreased({ metric: "m", before: 0, after: 1, expected: 3 }),
    "Silent Failures",
  );
});

Deno.test("a last_error stored as a JSON string is Silent Failures", () => {
  const result = checkLastErrorDetails(
    healthyApi({ runs: withFailure(2, { lastError: '{"kind":"provider_unavailable"}' }) }),
  );
  assertFails(result, "Silent Failures");
});

Deno.test("no metric increment is Silent Failures", () => {
  assertFails(checkMetricIncreased({ metric: "m", before: 2, after: 2 }), "Silent Failures");
});

Deno.test("partial rows are Partial State Written", () => {
  assertFails(checkEventsUntouched(healthyApi({ eventWrites: 2 })), "Partial State Written");
  assertFails(
    checkEventsUnchanged(
      healthyDatabase({ eventsAfter: [...EVENTS, "e3 | marker"], markerRows: 1 }),
    ),
    "Partial State Written",
  );
  const moved = healthyDatabase({
    rowAfter: row({ errorCount: 0, lastError: null, syncCursor: "new" }),
  });
  const result = checkConnectionUntouched({ ...moved, rowBefore: healthyDatabase().rowBefore });
  assertFails(result, "Partial State Written");
  assertStringIncludes(result.detail, "sync_cursor");
});

Deno.test("only the webhook handler's line naming an outage delivery shows the webhook's error", () => {
  assert(checkDatabaseErrorLogged(healthyDatabase()).pass);
  // The scheduler's claim failure is no evidence about the webhook (issue 16's planted defect).
  const scheduler = {
    level: "error",
    kind: "database",
    category: "calsync.scheduler",
    message: "Cannot claim due connections; retrying in 500 ms",
  };
  assertFails(
    checkDatabaseErrorLogged(healthyDatabase({ databaseLogs: [scheduler] })),
    "Silent Failures",
  );
  // Nor is a handler line about another delivery.
  const other = { ...healthyDatabase().databaseLogs[0], message_number: 99 };
  assertFails(
    checkDatabaseErrorLogged(healthyDatabase({ databaseLogs: [other] })),
    "Silent Failures",
  );
  const graph = {
    level: "error",
    kind: "database",
    category: "calsync.webhooks",
    provider: "microsoft",
    subscription_ids: ["s1"],
  };
  assert(
    checkDatabaseErrorLogged(
      healthyDatabase({ databaseLogs: [graph], deliveryIds: ["microsoft:s1"] }),
    )
      .pass,
  );
});

Deno.test("a webhook acknowledged while the database is down is Silent Failures", () => {
  const result = checkWebhookRejected(
    healthyDatabase({ webhookAttempts: [{ attempt: 1, status: 200, at: NOW }] }),
  );
  assertFails(result, "Silent Failures");
  assert(checkWebhookRejected(healthyDatabase()).pass);
});

Deno.test("webhook checks fail with the reason when the endpoint does not exist", () => {
  const evidence = healthyDatabase({ webhookAttempts: null, webhookNote: WEBHOOK_UNAVAILABLE });
  const rejected = checkWebhookRejected(evidence);
  assertEquals([rejected.pass, rejected.detail], [false, WEBHOOK_UNAVAILABLE]);
  const webhook = healthyWebhook({ attempts: null, note: WEBHOOK_UNAVAILABLE });
  for (const check of [checkProviderRetried, checkProcessedOnce, checkOneSync, checkNoSecondSync]) {
    assertEquals(check(webhook).detail, WEBHOOK_UNAVAILABLE);
  }
});

Deno.test("a webhook answered only after the deadline did not fail fast", () => {
  const limits = { deadlineMs: 1_500, slackMs: 500 };
  assert(checkFailedFast(healthyDatabase(), limits).pass);
  assertEquals(
    checkFailedFast(healthyDatabase({ webhookLatenciesMs: [30, 2_900] }), limits).pass,
    false,
  );
});

Deno.test("a crashed daemon fails the liveness check", () => {
  assertEquals(checkDaemonAlive({ daemonAlive: false, healthStatus: null }).pass, false);
});

Deno.test("idempotency: a duplicate that syncs again fails, a lost one is Silent Failures", () => {
  for (const check of [checkProviderRetried, checkProcessedOnce, checkOneSync, checkNoSecondSync]) {
    assert(check(healthyWebhook()).pass, check.name);
  }
  assertFails(checkOneSync(healthyWebhook({ syncs: 2, apiRequests: 2 })), null);
  assertFails(
    checkNoSecondSync(
      healthyWebhook({ duplicate: { status: 200, newKeys: 1, syncs: 1, apiRequests: 1 } }),
    ),
    null,
  );
  assertFails(checkProcessedOnce(healthyWebhook({ keys: [], acknowledged: 1 })), "Silent Failures");
});

Deno.test("recovery: a mirror that differs from the provider is Partial State Written", () => {
  const evidence = { successLog: null, row: null, mirror: ["a|A|1"], provider: ["a|A|2", "b|B|1"] };
  assertFails(checkMirrorMatchesProvider(evidence), "Partial State Written");
});

Deno.test("the results block has the drill document's shape and fails on any failed check", () => {
  const result = emptyResult();
  const api = createRecorder({ scenario: "api", variant: "503", provider: "google" }, result);
  api.check("outage", "backoff_until set", checkBackoffSet(healthyApi()));
  api.check(
    "recovery",
    "events match",
    checkMirrorMatchesProvider({
      successLog: null,
      row: null,
      mirror: ["a"],
      provider: ["a"],
    }),
  );
  const db = createRecorder({ scenario: "database", variant: "cut", provider: "google" }, result);
  db.check("outage", "metric", checkMetricIncreased({ metric: "m", before: 1, after: 1 }));
  const report = buildReport({
    startedAt: new Date(NOW),
    finishedAt: new Date(NOW + 30_000),
    database: "h:5432/db",
    providers: ["google"],
    scenarios: ["api", "database", "webhook"],
    webhooks: { available: true, note: "" },
    result,
  });
  assertEquals(report.passed, false);
  assertEquals(
    renderResultsBlock(report.results).split("\n").slice(0, 8),
    [
      "## Drill Results",
      "",
      "**Date:** `2026-01-02`",
      "**External API Outage:** `PASS`",
      "**Database Failure:** `FAIL`",
      "**Webhook Outage:** `NOT RUN`",
      "**Recovery Tests:** `PASS`",
      "**Status:** `FAIL`",
    ],
  );
  assertStringIncludes(report.results.notes, "database/cut google: metric (Silent Failures)");
});

Deno.test("metric scrapes sum a counter over the matching labels", () => {
  const samples = parseSamples([
    "# HELP calendar_sync_failures_total x",
    'calendar_sync_failures_total{provider="google",reason="database"} 2',
    'calendar_sync_failures_total{provider="all",reason="database"} 3',
    'calendar_sync_failures_total{provider="google",reason="rate_limited"} 7',
  ].join("\n"));
  assertEquals(sumSamples(samples, "calendar_sync_failures_total", { reason: "database" }), 5);
  assertEquals(sumSamples(samples, "calendar_sync_failures_total", { provider: "google" }), 9);
});
