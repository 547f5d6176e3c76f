/**
 * @module The freshness scenario (issue: never silently stale), both providers, in an
 * environment of its own whose poll and reconciliation intervals are compressed to seconds:
 * - poll: a change the provider makes without notifying anyone reaches the mirror by the poll;
 * - unavailable: a calendar deleted at the provider ends in calendar_unavailable, no more requests;
 * - guard: an empty full listing for a calendar with rows deletes nothing until released;
 * - reconcile: drift planted behind calsync's back (a row deleted, one changed, one added) is
 *   found, repaired and counted by the next reconciliation.
 */
import { requestSync } from "../../src/storage/connections.ts";
import { runCli } from "../../testkit/daemon.ts";
import { sleep, waitFor } from "../../testkit/wait.ts";
import {
  checkCalendarUnavailable,
  checkDeletionsHeld,
  checkDriftCounted,
  checkDriftRepaired,
  checkNoFurtherRequests,
  checkNoNotification,
  checkPollCaughtChange,
  checkPushMissedCounted,
  checkReleasedAndSynced,
  checkRowsKept,
  checkTerminalReported,
  type DriftEvidence,
} from "./checks_freshness.ts";
import { DRILL_LAUNCH, type DrillConnection, type DrillEnvironment } from "./environment.ts";
import type { ProviderKind } from "./evidence.ts";
import type { Fault } from "../../testkit/fake_faults.ts";
import { createRecorder, emptyResult, type ScenarioResult } from "./records.ts";
import { counterValue, waitIdle } from "./scenario_support.ts";
import { mirrorTuples, readConnection } from "./snapshot.ts";

/** The connections the scenario needs, one per variant and provider. */
export const FRESHNESS_VARIANTS = ["poll", "unavailable", "guard", "reconcile"] as const;

const POLL_WITH_PUSH_MS = 3_000;
const RECONCILE_MS = 6_000;

/** The daemon settings of the scenario's own environment: intervals in seconds, not hours. */
export const FRESHNESS_SETTINGS: Readonly<Record<string, string>> = {
  SYNC_POLL_INTERVAL: "2s",
  SYNC_POLL_INTERVAL_WITH_PUSH: `${POLL_WITH_PUSH_MS}ms`,
  SYNC_RECONCILE_INTERVAL: `${RECONCILE_MS}ms`,
  // Three seeded rows must be enough for an empty listing to look like a fault.
  SYNC_DELETE_GUARD_MIN: "2",
};

// A claim tick, one sync, and a running sync's lease to wait out: the drill's own allowance.
const SLACK_MS = 4_000;

async function rowCount(env: DrillEnvironment, c: DrillConnection): Promise<number> {
  const [row] = await env.db.adminSql<{ n: number }[]>`
    select count(*)::int as n from external_calendar_events where connection_id = ${c.connectionId}`;
  return row.n;
}

async function status(env: DrillEnvironment, c: DrillConnection): Promise<string | null> {
  return (await readConnection(env.db.adminSql, c.connectionId))?.status ?? null;
}

/** A variant's connection once idle, its provider's fake, and a recorder for its checks. */
async function variant(
  env: DrillEnvironment,
  kind: ProviderKind,
  name: (typeof FRESHNESS_VARIANTS)[number],
  result: ScenarioResult,
) {
  const c = env.connection("freshness", kind, name);
  const rec = createRecorder({ scenario: "freshness", variant: name, provider: kind }, result);
  await waitIdle(env, c);
  return { c, provider: env.providers.get(kind)!, rec };
}

async function runPoll(env: DrillEnvironment, kind: ProviderKind, result: ScenarioResult) {
  const { c, provider, rec } = await variant(env, kind, "poll", result);
  // This variant is about the poll: a reconciliation that found the change first would count it
  // as drift instead (see the reconcile variant), so the next one is moved out of the way.
  await env.db.adminSql`update external_calendar_connections
    set reconcile_due_at = now() + interval '1 hour' where id = ${c.connectionId}`;
  // One run completes first, so the next due time is the poll's as the daemon computes it.
  const before = (await readConnection(env.db.adminSql, c.connectionId))?.lastSuccessAt ?? null;
  await requestSync(env.db.adminSql, c.connectionId);
  await waitFor(async () => {
    const row = await readConnection(env.db.adminSql, c.connectionId);
    return row?.lastSuccessAt && row.lastSuccessAt.getTime() !== before?.getTime() &&
      !row.syncNeeded && row.leaseOwner === null;
  }, { timeoutMs: 10_000, intervalMs: 50 });
  const pushMissedBefore = await counterValue(env, "calendar_push_missed_total", {
    provider: kind,
  });
  const deliveryMark = provider.deliveryMark();
  const title = `Quiet change ${crypto.randomUUID().slice(0, 8)}`;
  const changedAt = Date.now();
  provider.putEventQuietly(c.calendar, title);
  const limit = POLL_WITH_PUSH_MS + SLACK_MS;
  const seen = await waitFor(async () => {
    const mirror = await mirrorTuples(env.db.adminSql, c.connectionId);
    return mirror.some((line) => line.split("|")[1] === title) ? Date.now() : null;
  }, { timeoutMs: 3 * limit, intervalMs: 50 });
  await waitIdle(env, c);
  const evidence = {
    mirroredAfterMs: seen === null ? null : seen - changedAt,
    pollIntervalMs: POLL_WITH_PUSH_MS,
    slackMs: SLACK_MS,
    notifications: provider.notificationAttempts(c.calendar, deliveryMark).length,
    pushMissedBefore,
    pushMissedAfter: await counterValue(env, "calendar_push_missed_total", { provider: kind }),
  };
  rec.check(
    "outage",
    "a change nobody announced reached the mirror by the poll",
    checkPollCaughtChange(evidence),
  );
  rec.check("outage", "the provider sent no notification for it", checkNoNotification(evidence));
  rec.check("recovery", "the missed push was counted", checkPushMissedCounted(evidence));
  await rec.verify("recovery", env.db.adminSql, c.providerId);
}

function calendarGone(kind: ProviderKind): Fault {
  return kind === "google"
    ? { kind: "status", status: 404, reason: "notFound" }
    : { kind: "status", status: 404, reason: "ErrorItemNotFound" };
}

async function runUnavailable(env: DrillEnvironment, kind: ProviderKind, result: ScenarioResult) {
  const { c, provider, rec } = await variant(env, kind, "unavailable", result);
  const rowsBefore = await rowCount(env, c);
  const labels = { provider: kind, state: "calendar_unavailable" };
  const terminalBefore = await counterValue(
    env,
    "calendar_sync_terminal_transitions_total",
    labels,
  );
  const logMark = env.daemon.mark();
  provider.setFault(calendarGone(kind), { target: "api", calendar: c.calendar });
  await requestSync(env.db.adminSql, c.connectionId);
  await waitFor(async () => (await status(env, c)) === "calendar_unavailable", {
    timeoutMs: 15_000,
    intervalMs: 50,
  });
  await waitIdle(env, c);
  const errorLine = await env.daemon.waitForLog(
    (line) => line.connection_id === c.connectionId && line.level === "error",
    { since: logMark, timeoutMs: 2_000 },
  );
  // Absence of requests can only be shown by waiting: two poll intervals and a reconciliation.
  const requestMark = provider.requestMark();
  const quietMs = 2 * POLL_WITH_PUSH_MS;
  await requestSync(env.db.adminSql, c.connectionId); // A webhook's request must not wake it.
  await sleep(quietMs);
  const row = await readConnection(env.db.adminSql, c.connectionId);
  const evidence = {
    status: row?.status ?? null,
    lastError: row?.lastError ?? null,
    errorLogged: errorLine !== null,
    terminalBefore,
    terminalAfter: await counterValue(env, "calendar_sync_terminal_transitions_total", labels),
    rowsBefore,
    rowsAfter: await rowCount(env, c),
    requestsAfter: provider.apiRequests(c.calendar, requestMark).length,
    quietMs,
  };
  provider.setFault(null, { target: "api", calendar: c.calendar });
  rec.check(
    "outage",
    "a deleted calendar ends in calendar_unavailable",
    checkCalendarUnavailable(evidence),
  );
  rec.check("outage", "the transition was logged and counted", checkTerminalReported(evidence));
  rec.check(
    "outage",
    "no further requests for the deleted calendar",
    checkNoFurtherRequests(evidence),
  );
  rec.check("outage", "its mirrored rows are kept", checkRowsKept(evidence));
  await rec.verify("outage", env.db.adminSql, c.providerId);
}

function emptyListing(kind: ProviderKind, provider: { env: Record<string, string> }): Fault {
  if (kind === "google") {
    return {
      kind: "status",
      status: 200,
      body: { kind: "calendar#events", items: [], nextSyncToken: "drill-empty-listing" },
    };
  }
  const base = provider.env.MICROSOFT_GRAPH_BASE_URL;
  return {
    kind: "status",
    status: 200,
    body: {
      value: [],
      "@odata.deltaLink": `${base}/me/calendarView/delta?$deltatoken=drill-empty`,
    },
  };
}

async function runGuard(env: DrillEnvironment, kind: ProviderKind, result: ScenarioResult) {
  const { c, provider, rec } = await variant(env, kind, "guard", result);
  const rowsBefore = await rowCount(env, c);
  const heldBefore = await counterValue(env, "calendar_sync_deletions_held_total", {
    provider: kind,
  });
  // Every listing is empty until the hold: a poll that starts before the requested full sync
  // gets an empty page too (harmless for an incremental one), so none can use the fault up.
  provider.setFault(emptyListing(kind, provider), { target: "api", calendar: c.calendar });
  await requestSync(env.db.adminSql, c.connectionId, { full: true });
  await waitFor(async () => (await status(env, c)) === "deletions_held", {
    timeoutMs: 15_000,
    intervalMs: 50,
  });
  await waitIdle(env, c);
  provider.setFault(null, { target: "api", calendar: c.calendar });
  const [held] = await env.db.adminSql<{ n: number }[]>`
    select count(*)::int as n from held_event_deletions where connection_id = ${c.connectionId}`;
  const statusHeld = await status(env, c);
  const rowsWhileHeld = await rowCount(env, c);
  const heldAfter = await counterValue(env, "calendar_sync_deletions_held_total", {
    provider: kind,
  });
  const release = await runCli(
    ["connections", "release-deletions", "--connection", c.connectionId, "--discard"],
    env.daemonEnv,
    DRILL_LAUNCH,
  );
  const matched = await waitFor(async () => {
    const mirror = await mirrorTuples(env.db.adminSql, c.connectionId);
    const live = provider.liveTuples(c.calendar);
    return (await status(env, c)) === "active" && mirror.join("\n") === live.join("\n");
  }, { timeoutMs: 15_000, intervalMs: 50 });
  await waitIdle(env, c);
  const evidence = {
    status: statusHeld,
    held: held.n,
    rowsBefore,
    rowsWhileHeld,
    heldMetricBefore: heldBefore,
    heldMetricAfter: heldAfter,
    releaseCode: release.code,
    statusAfterRelease: await status(env, c),
    mirrorAfterRelease: await mirrorTuples(env.db.adminSql, c.connectionId),
    providerAfterRelease: provider.liveTuples(c.calendar),
  };
  rec.note(`freshness/guard ${kind}: mirror matched after release: ${matched !== null}`);
  rec.check("outage", "an empty full listing holds its deletions", checkDeletionsHeld(evidence));
  await rec.verify("outage", env.db.adminSql, c.providerId);
  rec.check(
    "recovery",
    "release-deletions --discard resumes the sync",
    checkReleasedAndSynced(evidence),
  );
  await rec.verify("recovery", env.db.adminSql, c.providerId);
}

type Repairs = DriftEvidence["repairsBefore"];

async function repairs(env: DrillEnvironment, kind: ProviderKind): Promise<Repairs> {
  const read = (k: string) =>
    counterValue(env, "calendar_sync_drift_repairs_total", { provider: kind, kind: k });
  return {
    missing: await read("missing"),
    extra: await read("extra"),
    changed: await read("changed"),
  };
}

async function lastVerified(env: DrillEnvironment, c: DrillConnection): Promise<Date | null> {
  const [row] = await env.db.adminSql<{ at: Date | null }[]>`
    select last_verified_at as at from external_calendar_connections where id = ${c.connectionId}`;
  return row?.at ?? null;
}

/** Deletes one mirrored row, changes another and adds one the calendar does not have. */
async function plantDrift(env: DrillEnvironment, c: DrillConnection): Promise<void> {
  const sql = env.db.adminSql;
  await sql.begin(async (tx) => {
    const rows = await tx<{ id: string }[]>`
      select external_event_id as id from external_calendar_events
      where connection_id = ${c.connectionId} order by external_event_id limit 2`;
    if (rows.length < 2) throw new Error(`Cannot plant drift: only ${rows.length} mirrored rows`);
    await tx`delete from external_calendar_events
      where connection_id = ${c.connectionId} and external_event_id = ${rows[0].id}`;
    await tx`update external_calendar_events set title = 'Drifted title', etag = 'drifted'
      where connection_id = ${c.connectionId} and external_event_id = ${rows[1].id}`;
    await tx`insert into external_calendar_events
        (connection_id, external_event_id, etag, status, title, starts_at, ends_at, raw,
         occurrence_kind)
      values (${c.connectionId}, ${"drill-extra-" + crypto.randomUUID()}, 'extra', 'confirmed',
        'Not in the calendar', now() + interval '1 day', now() + interval '1 day 1 hour',
        '{}'::jsonb, 'single')`;
  });
}

async function runReconcile(env: DrillEnvironment, kind: ProviderKind, result: ScenarioResult) {
  const { c, provider, rec } = await variant(env, kind, "reconcile", result);
  const repairsBefore = await repairs(env, kind);
  const verifiedBefore = await lastVerified(env, c);
  await plantDrift(env, c);
  // Only a reconciliation can find this drift: no provider change announces it.
  await waitFor(async () => {
    const now = await repairs(env, kind);
    return now.missing > repairsBefore.missing && now.extra > repairsBefore.extra &&
      now.changed > repairsBefore.changed;
  }, { timeoutMs: 3 * RECONCILE_MS + SLACK_MS, intervalMs: 100 });
  await waitIdle(env, c);
  const evidence: DriftEvidence = {
    repairsBefore,
    repairsAfter: await repairs(env, kind),
    verifiedBefore,
    verifiedAfter: await lastVerified(env, c),
    mirror: await mirrorTuples(env.db.adminSql, c.connectionId),
    provider: provider.liveTuples(c.calendar),
  };
  rec.check("outage", "planted drift is counted by kind", checkDriftCounted(evidence));
  rec.check(
    "recovery",
    "the reconciliation repaired it and set last_verified_at",
    checkDriftRepaired(evidence),
  );
  await rec.verify("recovery", env.db.adminSql, c.providerId);
}

/** Runs the four variants, the providers side by side (each has its own calendars and labels). */
export async function runFreshnessScenario(
  env: DrillEnvironment,
  kinds: readonly ProviderKind[],
): Promise<ScenarioResult> {
  const result = emptyResult();
  for (const run of [runPoll, runUnavailable, runGuard, runReconcile]) {
    const own = kinds.map(() => emptyResult());
    await Promise.all(kinds.map((kind, i) => run(env, kind, own[i])));
    for (const part of own) {
      result.checks.push(...part.checks);
      result.verification.push(...part.verification);
      result.notes.push(...part.notes);
      result.timelines.push(...part.timelines);
    }
  }
  return result;
}
