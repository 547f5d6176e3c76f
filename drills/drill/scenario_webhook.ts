/**
 * @module Scenario 3: the webhook endpoint is unavailable (503, then connection refused) while the
 * provider delivers a notification and retries; then it is restored, and a duplicate is redelivered.
 */
import { deliveryEvents, faultWindow, recoveryEvents, requestEvents } from "./timeline.ts";
import {
  checkDedupeKeyStored,
  checkDuplicateAcknowledged,
  checkNoSecondSync,
  checkOneSync,
  checkProcessedOnce,
  checkProviderRetried,
} from "./checks_webhook.ts";
import type { DrillEnvironment } from "./environment.ts";
import type { DeliveryAttempt, ProviderKind, WebhookOutageEvidence } from "./evidence.ts";
import { createRecorder, emptyResult, type ScenarioResult } from "./records.ts";
import { isSuccessLine, waitIdle } from "./scenario_support.ts";
import { dedupeKeys } from "./snapshot.ts";
import { sleep, waitFor } from "../../testkit/wait.ts";

// Long enough for several scheduler polls (200 ms): a second sync would show up within it.
const QUIET_MS = 1_000;

const is2xx = (a: DeliveryAttempt) => typeof a.status === "number" && a.status < 300;

function unavailableEvidence(note: string): WebhookOutageEvidence {
  return {
    attempts: null,
    note,
    keys: [],
    acknowledged: 0,
    syncs: 0,
    apiRequests: 0,
    duplicate: null,
  };
}

async function collect(
  env: DrillEnvironment,
  kind: ProviderKind,
  result: ScenarioResult,
): Promise<WebhookOutageEvidence> {
  const sql = env.db.adminSql;
  const c = env.connection("webhook", kind);
  const provider = env.providers.get(kind)!;
  const gate = env.gate;
  const rec = createRecorder({ scenario: "webhook", variant: "outage", provider: kind }, result);
  await waitIdle(env, c);
  const keysBefore = new Set(await dedupeKeys(sql, c.connectionId));
  const deliveryMark = provider.deliveryMark();
  const requestMark = provider.requestMark();
  const logMark = env.daemon.mark();
  const gateMark = gate.requests.length;
  const attempts = () => provider.notificationAttempts(c.calendar, deliveryMark);
  const downAt = Date.now();
  let refusedAt = downAt;
  try {
    await gate.setMode("unavailable");
    provider.putEvent(c.calendar, "Webhook outage change");
    await waitFor(() => attempts().filter((a) => a.status === 503).length >= 2, {
      timeoutMs: 10_000,
    });
    await rec.verify("outage", sql, c.providerId);
    refusedAt = Date.now();
    await gate.setMode("refuse");
    await waitFor(() => attempts().some((a) => a.status === "error"), { timeoutMs: 10_000 });
  } finally {
    await gate.setMode("pass");
  }
  const upAt = Date.now();
  await waitFor(() => attempts().some(is2xx), { timeoutMs: 20_000 });
  await env.daemon.waitForLog(isSuccessLine(c.connectionId), { since: logMark, timeoutMs: 10_000 });
  await waitIdle(env, c, 5_000);
  await sleep(QUIET_MS);
  const seen = attempts();
  const keys = (await dedupeKeys(sql, c.connectionId)).filter((key) => !keysBefore.has(key));
  const syncs = env.daemon.logsSince(logMark).filter(isSuccessLine(c.connectionId)).length;
  const apiRequests = provider.apiRequestTimes(c.calendar, requestMark).length;

  // Redeliver exactly what the daemon acknowledged, as a provider's duplicate would arrive.
  const original = gate.requests.slice(gateMark).find((r) =>
    r.mode === "pass" && r.method === "POST" && r.path === `/webhooks/${kind}` &&
    r.status >= 200 && r.status < 300 && !r.search.includes("validationToken")
  );
  let duplicate: WebhookOutageEvidence["duplicate"] = null;
  if (original) {
    const keysNow = new Set(await dedupeKeys(sql, c.connectionId));
    const dupLogMark = env.daemon.mark();
    const dupRequestMark = provider.requestMark();
    const status = await gate.replay(original);
    await sleep(QUIET_MS);
    duplicate = {
      status,
      newKeys: (await dedupeKeys(sql, c.connectionId)).filter((k) => !keysNow.has(k)).length,
      syncs: env.daemon.logsSince(dupLogMark).filter(isSuccessLine(c.connectionId)).length,
      apiRequests: provider.apiRequestTimes(c.calendar, dupRequestMark).length,
    };
  }
  await rec.verify("recovery", sql, c.providerId);
  rec.timeline([
    faultWindow("endpoint answers 503", downAt, refusedAt),
    faultWindow("endpoint refuses connections", refusedAt, upAt),
    ...deliveryEvents(attempts()),
    ...requestEvents(provider.apiRequests(c.calendar, requestMark)),
    ...recoveryEvents(
      env.daemon.logsSince(logMark).find(isSuccessLine(c.connectionId)) ?? null,
    ),
  ]);
  return {
    attempts: seen,
    note: "",
    keys,
    acknowledged: seen.filter(is2xx).length,
    syncs,
    apiRequests,
    duplicate,
  };
}

/** Runs the webhook outage scenario for one provider. */
export async function runWebhookScenario(
  env: DrillEnvironment,
  kind: ProviderKind,
): Promise<ScenarioResult> {
  const result = emptyResult();
  const rec = createRecorder({ scenario: "webhook", variant: "outage", provider: kind }, result);
  let evidence: WebhookOutageEvidence;
  if (env.webhooks.available) {
    evidence = await collect(env, kind, result);
  } else {
    // Nothing to deliver to, but operators still see the connection's state.
    evidence = unavailableEvidence(env.webhooks.note);
    await rec.verify("outage", env.db.adminSql, env.connection("webhook", kind).providerId);
  }
  rec.check(
    "outage",
    "provider got 503 and connection refused, and retried",
    checkProviderRetried(evidence),
  );
  rec.check("outage", "webhook_dedupe_keys holds its key", checkDedupeKeyStored(evidence));
  rec.check("outage", "duplicate redelivery acknowledged", checkDuplicateAcknowledged(evidence));
  rec.check("outage", "duplicate triggered no second sync", checkNoSecondSync(evidence));
  rec.check("recovery", "notification processed once", checkProcessedOnce(evidence));
  rec.check("recovery", "exactly one sync triggered", checkOneSync(evidence));
  return result;
}
