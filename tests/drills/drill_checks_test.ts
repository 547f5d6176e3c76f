import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import {
  checkBackoffSet,
  checkErrorCounted,
  checkLastErrorDetails,
  checkNoEarlyRetry,
  checkRetryAfterHonoured,
  checkSyncStillNeeded,
} from "../../drills/drill/checks_api.ts";
import {
  checkConnectionUntouched,
  checkDaemonAlive,
  checkEventsUnchanged,
  checkFailureLogged,
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
  WebhookOutageEvidence,
} from "../../drills/drill/evidence.ts";
import { buildReport, renderResultsBlock } from "../../drills/drill/report.ts";
import { createRecorder, emptyResult } from "../../drills/drill/records.ts";
import { parseSamples, sumSamples } from "../../drills/drill/prometheus.ts";

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

/** What a healthy daemon leaves behind after a 503 from the provider. */
function healthyApi(overrides: Partial<ApiOutageEvidence> = {}): ApiOutageEvidence {
  return {
    injectedStatus: 503,
    expectedKind: "provider_unavailable",
    retryAfterMs: null,
    connectionId: "c1",
    failureLog: {
      level: "error",
      kind: "provider_unavailable",
      connection_id: "c1",
      provider: "google",
      status: 503,
      attempt: 1,
      backoff_until: new Date(NOW + 1_200).toISOString(),
    },
    failedAt: NOW,
    row: row(),
    readAt: NOW + 20,
    failuresBefore: 0,
    failuresAfter: 1,
    eventsBefore: EVENTS,
    eventsAfter: EVENTS,
    retryRequestTimes: [NOW + 1_250],
    ...overrides,
  };
}

function healthyDatabase(overrides: Partial<DatabaseOutageEvidence> = {}): DatabaseOutageEvidence {
  return {
    connectionId: "c1",
    databaseLogs: [{
      level: "error",
      kind: "database",
      category: "calsync.webhooks",
      message: "x",
    }],
    webhookAttempts: [{ attempt: 1, status: 503, at: NOW }],
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
      checkFailureLogged,
      checkBackoffSet,
      checkErrorCounted,
      checkLastErrorDetails,
      checkSyncStillNeeded,
      checkEventsUnchanged,
      checkNoEarlyRetry,
    ]
  ) {
    const result = check(evidence);
    assert(result.pass, `${check.name}: ${result.detail}`);
    assertEquals(result.diagnosis, null);
  }
  assert(checkMetricIncreased({ metric: "m", before: 0, after: 1 }).pass);
});

Deno.test("no backoff_until is Backoff Not Activated", () => {
  assertFails(
    checkBackoffSet(healthyApi({ row: row({ backoffUntil: null }) })),
    "Backoff Not Activated",
  );
  // A backoff already in the past when read is no backoff either.
  assertFails(
    checkBackoffSet(healthyApi({ row: row({ backoffUntil: new Date(NOW) }) })),
    "Backoff Not Activated",
  );
});

Deno.test("an immediate retry is Backoff Not Activated, with the early requests counted", () => {
  const result = checkNoEarlyRetry(
    healthyApi({ retryRequestTimes: [NOW + 5, NOW + 10, NOW + 1_300] }),
  );
  assertFails(result, "Backoff Not Activated");
  assertStringIncludes(result.detail, "2 before backoff_until");
});

Deno.test("sync_needed false and error_count 0 are Backoff Not Activated", () => {
  assertFails(
    checkSyncStillNeeded(healthyApi({ row: row({ syncNeeded: false }) })),
    "Backoff Not Activated",
  );
  assertFails(
    checkErrorCounted(healthyApi({ row: row({ errorCount: 0 }) })),
    "Backoff Not Activated",
  );
});

Deno.test("a Retry-After cut short is Backoff Not Activated", () => {
  const evidence = healthyApi({
    injectedStatus: 429,
    expectedKind: "rate_limited",
    retryAfterMs: 2_000,
    row: row({
      backoffUntil: new Date(NOW + 900),
      lastError: { kind: "rate_limited", status: 429, message: "x", retry_after_ms: null },
    }),
  });
  assertFails(checkRetryAfterHonoured(evidence), "Backoff Not Activated");
  const honoured = healthyApi({
    retryAfterMs: 2_000,
    row: row({ backoffUntil: new Date(NOW + 2_000), lastError: { retry_after_ms: 2_000 } }),
  });
  assert(checkRetryAfterHonoured(honoured).pass);
});

Deno.test("no log line is Silent Failures", () => {
  assertFails(checkFailureLogged(healthyApi({ failureLog: null })), "Silent Failures");
  // A line without the architecture's fields (here: no backoff_until) is not structured enough.
  const { backoff_until: _, ...partial } = healthyApi().failureLog!;
  const result = checkFailureLogged(healthyApi({ failureLog: partial }));
  assertFails(result, "Silent Failures");
  assertStringIncludes(result.detail, "missing fields: backoff_until");
  assertFails(checkDatabaseErrorLogged(healthyDatabase({ databaseLogs: [] })), "Silent Failures");
});

Deno.test("a last_error stored as a JSON string is Silent Failures", () => {
  const result = checkLastErrorDetails(
    healthyApi({ row: row({ lastError: '{"kind":"provider_unavailable"}' }) }),
  );
  assertFails(result, "Silent Failures");
});

Deno.test("no metric increment is Silent Failures", () => {
  assertFails(checkMetricIncreased({ metric: "m", before: 2, after: 2 }), "Silent Failures");
});

Deno.test("partial rows are Partial State Written", () => {
  const changed = [EVENTS[0], 'e2 | "3" | confirmed | Review (new)'];
  assertFails(checkEventsUnchanged(healthyApi({ eventsAfter: changed })), "Partial State Written");
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
