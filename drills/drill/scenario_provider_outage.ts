/**
 * @module Scenario "provider-wide outage, 200 connections": the provider answers 503 to every
 * calendar. The breaker must open; while it is open the provider sees at most a handful of
 * requests per probe interval and no connection's error_count moves; after the provider recovers
 * all 200 connections sync again. Run with `calsync drill --scenario outage`.
 */
import { requestSync } from "../../src/storage/connections.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { outcome } from "./diagnosis.ts";
import { DAEMON_SETTINGS, type DrillEnvironment } from "./environment.ts";
import type { ProviderKind } from "./evidence.ts";
import { scrapeMetrics, sumSamples } from "../../testkit/prometheus_text.ts";
import { createRecorder, type Recorder, type ScenarioResult } from "./records.ts";
import { waitFor } from "../../testkit/wait.ts";

/** Connections the scenario runs with, the environment's own one included. */
export const OUTAGE_CONNECTIONS = 200;

const PROBE_MS = Number(DAEMON_SETTINGS.SYNC_BREAKER_PROBE_INTERVAL.replace("ms", ""));
const PROBE_MAX_MS = Number(DAEMON_SETTINGS.SYNC_BREAKER_PROBE_MAX.replace("ms", ""));
// A probe is one sync: its page request, and at most one more if the token had to be refreshed.
const REQUESTS_PER_PROBE = 2;

type Health = { state: string; probe_interval_ms: number };

async function health(env: DrillEnvironment, kind: ProviderKind): Promise<Health | null> {
  const [row] = await env.db.adminSql<Health[]>`
    select state, probe_interval_ms from provider_health where provider = ${kind}`;
  return row ?? null;
}

async function errorCounts(env: DrillEnvironment, providerId: string) {
  const rows = await env.db.adminSql<{ id: string; error_count: number }[]>`
    select id, error_count from external_calendar_connections where provider_id = ${providerId}`;
  return new Map(rows.map((row) => [row.id, row.error_count]));
}

/** Adds connections until the provider row has `OUTAGE_CONNECTIONS`, each on its own calendar. */
async function addConnections(env: DrillEnvironment, kind: ProviderKind): Promise<string> {
  const base = env.connection("outage", kind);
  const provider = env.providers.get(kind)!;
  const refreshToken = `drill-refresh-outage-many-${kind}`;
  provider.addRefreshToken(refreshToken);
  for (let i = 2; i <= OUTAGE_CONNECTIONS; i++) {
    const calendar = `drill-outage-${i}`;
    provider.putEventQuietly(calendar, `Seed (outage ${i})`);
    await insertConnection(env.db.adminSql, {
      providerId: base.providerId,
      externalCalendarId: calendar,
      refreshToken,
      accountLabel: `outage drill: ${i}`,
    });
  }
  return base.providerId;
}

async function settled(env: DrillEnvironment, providerId: string, since: Date | null) {
  const [row] = await env.db.adminSql<{ n: number }[]>`
    select count(*)::int as n from external_calendar_connections
    where provider_id = ${providerId} and error_count = 0 and not sync_needed
      and last_success_at is not null
      and (${since}::timestamptz is null or last_success_at > ${since})`;
  return row.n;
}

/** Runs the scenario for one provider. */
export async function runProviderOutageScenario(
  env: DrillEnvironment,
  kind: ProviderKind,
): Promise<ScenarioResult> {
  const record = createRecorder({ scenario: "outage", variant: "503-all", provider: kind });
  const provider = env.providers.get(kind)!;
  const providerId = await addConnections(env, kind);
  const ready = await waitFor(
    async () => await settled(env, providerId, null) === OUTAGE_CONNECTIONS,
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  if (!ready) {
    throw new Error(`The first syncs of ${OUTAGE_CONNECTIONS} connections did not finish`);
  }

  provider.setFault({ kind: "status", status: 503 }, { target: "api" });
  const ids = [...(await errorCounts(env, providerId)).keys()];
  for (const id of ids) await requestSync(env.db.adminSql, id);
  await checkOpening(env, kind, providerId, record);
  provider.setFault(null);
  const recoveredFrom = new Date();
  const recovered = await waitFor(
    async () => await settled(env, providerId, recoveredFrom) === OUTAGE_CONNECTIONS,
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  const count = await settled(env, providerId, recoveredFrom);
  record.check(
    "recovery",
    `all ${OUTAGE_CONNECTIONS} connections synced after the provider recovered`,
    outcome(
      Boolean(recovered),
      `${count} of ${OUTAGE_CONNECTIONS} connections with a success after the fault was removed, ` +
        `error_count 0, no sync needed`,
      "Backoff Not Activated",
    ),
  );
  const closed = (await health(env, kind))?.state;
  record.check(
    "recovery",
    "the breaker closed",
    outcome(closed === "closed", `provider_health.state=${closed}`, null),
  );
  await record.verify("recovery", env.db.adminSql, providerId);
  return record.result;
}

/** Waits for the breaker to open and for two failed probes; checks error counts and requests. */
async function checkOpening(
  env: DrillEnvironment,
  kind: ProviderKind,
  providerId: string,
  record: Recorder,
) {
  const provider = env.providers.get(kind)!;
  const opened = await waitFor(async () => {
    const [leased] = await env.db.adminSql<{ n: number }[]>`
      select count(*)::int as n from external_calendar_connections
      where provider_id = ${providerId} and lease_owner is not null`;
    return (await health(env, kind))?.state === "open" && leased.n === 0;
  }, { timeoutMs: 60_000, intervalMs: 50 });
  record.check(
    "outage",
    "the circuit breaker opened",
    outcome(Boolean(opened), `provider_health.state=${(await health(env, kind))?.state}`, null),
  );
  if (!opened) return;
  const atOpening = await errorCounts(env, providerId);
  const mark = provider.requestMark();
  const started = Date.now();
  const probed = await waitFor(async () => {
    const row = await health(env, kind);
    return row?.state === "open" && row.probe_interval_ms === PROBE_MAX_MS;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  const elapsedMs = Date.now() - started;
  const requests = provider.controls.requests.slice(mark)
    .filter((r) => /\/events$|\/calendarview\/delta$/i.test(r.path)).length;
  // 1 s, then 2 s, then the maximum: two failed probes in the wait.
  const probes = Math.max(2, Math.ceil(elapsedMs / PROBE_MS));
  record.check(
    "outage",
    "at most a handful of requests per probe interval while open",
    outcome(
      Boolean(probed) && requests <= probes * REQUESTS_PER_PROBE,
      `${requests} event requests from ${OUTAGE_CONNECTIONS} connections in ${elapsedMs} ms ` +
        `(probe interval grew to ${PROBE_MAX_MS} ms)`,
      "Backoff Not Activated",
    ),
  );
  const after = await errorCounts(env, providerId);
  const moved = [...after].filter(([id, count]) => count !== atOpening.get(id));
  record.check(
    "outage",
    "no error_count moved while the breaker was open",
    outcome(
      moved.length === 0,
      `${moved.length} of ${after.size} connections changed error_count; highest at the ` +
        `opening ${Math.max(...atOpening.values())}`,
      null,
    ),
  );
  const gauge = sumSamples(await scrapeMetrics(env.daemon.url), "calendar_provider_circuit_state", {
    provider: kind,
  });
  record.check(
    "outage",
    "calendar_provider_circuit_state shows the breaker open",
    outcome(
      gauge >= 1,
      `calendar_provider_circuit_state{provider="${kind}"}=${gauge}`,
      "Silent Failures",
    ),
  );
  await record.verify("outage", env.db.adminSql, providerId);
}
