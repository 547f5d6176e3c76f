/**
 * @module Scenario 2b: the database connection is cut in the middle of a sync's write transaction.
 * postgres.js prepares statements, so SQL text crosses the wire only once per connection; the cut
 * matches a parameter instead: a marker in the titles of new events, which travels in the Bind
 * message of the events upsert inside the write transaction.
 */
import { faultWindow, recoveryEvents } from "./timeline.ts";
import { requestSync } from "../../src/storage/connections.ts";
import {
  checkConnectionUntouched,
  checkDaemonAlive,
  checkEventsUnchanged,
  checkMetricIncreased,
  checkMirrorMatchesProvider,
  checkRecoverySync,
} from "./checks_common.ts";
import { checkDatabaseErrorLogged } from "./checks_database.ts";
import { outcome } from "./diagnosis.ts";
import type { DrillEnvironment } from "./environment.ts";
import type { DatabaseOutageEvidence, ProviderKind } from "./evidence.ts";
import { createRecorder, emptyResult, type ScenarioResult } from "./records.ts";
import { collectRecovery, failureCount, selector, waitIdle } from "./scenario_support.ts";
import { sampleState, type StateSample } from "./snapshot.ts";
import { sleep } from "../../testkit/wait.ts";

const MARKER_EVENTS = 3;

async function runOne(
  env: DrillEnvironment,
  kind: ProviderKind,
  result: ScenarioResult,
): Promise<void> {
  const sql = env.db.adminSql;
  const c = env.connection("database", kind);
  const provider = env.providers.get(kind)!;
  const rec = createRecorder(
    { scenario: "database", variant: "mid-write", provider: kind },
    result,
  );
  await waitIdle(env, c);
  const labels = { provider: kind, reason: "database" };
  const marker = `DRILL-CUT-${crypto.randomUUID()}`;
  const before = await sampleState(sql, c.connectionId, marker);
  const failuresBefore = await failureCount(env, labels);
  const logMark = env.daemon.mark();

  // The daemon retries on its own, and a late webhook can make that retry immediate, so the
  // drill samples the state all along, each sample one statement: rows visible while no sync
  // has succeeded since (same last_success_at) can only be the failed run's partial writes.
  const samples: StateSample[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const sample = await sampleState(sql, c.connectionId, marker).catch(() => null);
      if (sample) samples.push(sample);
      await sleep(5);
    }
  })();
  const cut = env.proxy.cutWhen(marker, { after: "forward" });
  let cutAt: number | null = null;
  cut.then(() => (cutAt = Date.now()), () => {});
  for (let i = 1; i <= MARKER_EVENTS; i++) provider.putEvent(c.calendar, `${marker} ${i}`);
  // Requested in the same instant as the provider's webhooks, so triggers land before or during
  // the sync that is cut.
  await requestSync(sql, c.connectionId);
  const failureLog = await env.daemon.waitForLog(
    (line) => line.connection_id === c.connectionId && line.level === "error",
    { since: logMark, timeoutMs: 10_000 },
  );
  sampling = false;
  await sampler;
  // One more after the failure was recorded: the run has released everything by now.
  const final = await sampleState(sql, c.connectionId, marker);
  if (final) samples.push(final);
  const successBefore = before?.row.lastSuccessAt?.getTime() ?? null;
  const unsynced = samples.filter((s) =>
    (s.row.lastSuccessAt?.getTime() ?? null) === successBefore
  );
  const last = unsynced.at(-1) ?? null;
  const evidence: DatabaseOutageEvidence = {
    connectionId: c.connectionId,
    databaseLogs: failureLog?.kind === "database" ? [failureLog] : [],
    deliveryIds: null,
    webhookAttempts: null,
    webhookNote: "",
    webhookLatenciesMs: [],
    failuresBefore,
    failuresAfter: await failureCount(env, labels),
    eventsBefore: before?.events ?? [],
    eventsAfter: last?.events ?? [],
    markerRows: Math.max(0, ...unsynced.map((s) => s.markerRows)),
    rowBefore: before?.row ?? null,
    rowAfter: last?.row ?? null,
    daemonAlive: env.daemon.alive(),
    healthStatus: await env.daemon.health(),
    command: null,
  };
  rec.note(
    `database/mid-write ${kind}: ${samples.length} state samples while the sync ran, ` +
      `${unsynced.length} before any later sync succeeded`,
  );
  await rec.verify("outage", sql, c.providerId);
  const stats = env.proxy.stats();
  // Nothing to restore: the cut took one connection. The daemon retries on its own.
  const failedIndex = failureLog === null ? -1 : env.daemon.logs.indexOf(failureLog);
  const recovery = await collectRecovery(env, c, failedIndex + 1 || logMark, 10_000);

  rec.check(
    "outage",
    "connection cut inside the write transaction",
    outcome(
      cutAt !== null,
      cutAt === null
        ? "the marker never reached the database: no cut"
        : `cut at ${new Date(cutAt).toISOString()} (proxy cuts so far: ${stats.cuts})`,
      null,
    ),
  );
  rec.check(
    "outage",
    "sync failed with a logged database error",
    checkDatabaseErrorLogged(evidence),
  );
  rec.check(
    "outage",
    `${selector(labels)} went up`,
    checkMetricIncreased({
      metric: selector(labels),
      before: evidence.failuresBefore,
      after: evidence.failuresAfter,
    }),
  );
  rec.check(
    "outage",
    "no partial rows in external_calendar_events",
    checkEventsUnchanged(evidence),
  );
  rec.check(
    "outage",
    "external_calendar_connections not partially updated",
    checkConnectionUntouched(evidence),
  );
  rec.check("outage", "daemon stayed up", checkDaemonAlive(evidence));
  rec.check(
    "recovery",
    "the daemon's retry succeeded",
    checkRecoverySync(recovery, "Silent Failures"),
  );
  rec.check("recovery", "data consistent with the provider", checkMirrorMatchesProvider(recovery));
  await rec.verify("recovery", sql, c.providerId);
  const failedAt = typeof failureLog?.time === "string" ? Date.parse(failureLog.time) : null;
  rec.timeline([
    ...(cutAt === null ? [] : [
      faultWindow("write transaction's connection cut", cutAt, Math.max(cutAt, failedAt ?? cutAt)),
    ]),
    ...(failedAt === null
      ? []
      : [{ kind: "failure" as const, at: failedAt, ok: false, label: "sync failed: database" }]),
    ...recoveryEvents(recovery.successLog),
  ]);
}

/** Cuts one write transaction per provider (in parallel: each cut matches its own marker). */
export async function runMidWrite(
  env: DrillEnvironment,
  kinds: readonly ProviderKind[],
  result: ScenarioResult,
): Promise<void> {
  // Each provider reports into its own result, so the report keeps one provider's lines together.
  const own = kinds.map(() => emptyResult());
  await Promise.all(kinds.map((kind, i) => runOne(env, kind, own[i])));
  for (const part of own) {
    result.checks.push(...part.checks);
    result.verification.push(...part.verification);
    result.notes.push(...part.notes);
    result.timelines.push(...part.timelines);
  }
}
