/**
 * @module Scenario 2: the database fails: cut (new connections refused, open ones reset), cut in the
 * middle of a sync's write transaction, and every connection slot held by other clients.
 */
import { deliveryEvents, faultWindow, recoveryEvents, requestEvents } from "./timeline.ts";
import {
  checkConnectionUntouched,
  checkDaemonAlive,
  checkEventsUnchanged,
  checkMetricIncreased,
  checkMirrorMatchesProvider,
  checkRecoverySync,
} from "./checks_common.ts";
import {
  checkCommandReportsError,
  checkCommandSucceeded,
  checkDatabaseErrorLogged,
  checkFailedFast,
  checkWebhookRedelivered,
  checkWebhookRejected,
} from "./checks_database.ts";
import { DAEMON_SETTINGS, type DrillConnection, type DrillEnvironment } from "./environment.ts";
import type { DatabaseOutageEvidence, LogLine, ProviderKind } from "./evidence.ts";
import { createRecorder, emptyResult, type Recorder, type ScenarioResult } from "./records.ts";
import {
  collectRecovery,
  counterValue,
  operatorSync,
  selector,
  waitIdle,
} from "./scenario_support.ts";
import { runMidWrite } from "./scenario_mid_write.ts";
import { readConnection, snapshotEvents } from "./snapshot.ts";
import { waitFor } from "../../testkit/wait.ts";

/** Puts the fault in place; resolves to the function that removes it. */
type Injector = (env: DrillEnvironment) => Promise<{ restore(): Promise<void>; note: string }>;

const DEADLINE_MS = Number(DAEMON_SETTINGS.WEBHOOK_RESPONSE_DEADLINE_MS);
// What a 5xx may take beyond the daemon's own deadline: HTTP, the gate and a busy machine.
const ANSWER_SLACK_MS = 500;

/** (a) The database goes away: new connections refused, open ones reset. */
const cutDatabase: Injector = async (env) => {
  await env.proxy.refuseNew(true);
  env.proxy.resetAll();
  return {
    note: "database/cut: fault proxy refuses new connections and reset every open one",
    restore: () => env.proxy.refuseNew(false),
  };
};

/**
 * (c) Connection slots exhausted: the daemon's connections are reset while the proxy refuses,
 * the scratch database gets a CONNECTION LIMIT, and other clients of the daemon's own role take
 * every slot. The daemon's reconnects then reach the server and are refused with SQLSTATE 53300
 * ("too many connections"), as when another service leaks connections.
 */
const exhaustSlots: Injector = async (env) => {
  await env.proxy.refuseNew(true);
  env.proxy.resetAll();
  const hold = await env.db.holdAllSlots();
  await env.proxy.refuseNew(false);
  return {
    note: `database/pool: CONNECTION LIMIT on the scratch database, all ${hold.held} slots ` +
      "held by other clients of the daemon's role; the daemon's connections reset",
    restore: () => hold.release(),
  };
};

/** The webhook handler's own database error line for `kind` (never the scheduler's). */
function isHandlerLine(kind: ProviderKind): (line: LogLine) => boolean {
  return (line) =>
    line.level === "error" && line.kind === "database" && line.category === "calsync.webhooks" &&
    line.provider === kind;
}

// The webhook's own counters: its result, and the HTTP answers of its route.
function webhookCounters(kind: ProviderKind): { name: string; labels: Record<string, string> }[] {
  return [
    {
      name: "calendar_webhook_notifications_total",
      labels: { provider: kind, result: "unavailable" },
    },
    { name: "calsync_http_requests_total", labels: { route: `/webhooks/${kind}`, status: "5xx" } },
  ];
}

type Before = {
  c: DrillConnection;
  eventsBefore: readonly string[];
  rowBefore: Awaited<ReturnType<typeof readConnection>>;
  deliveryMark: number;
  requestMark: number;
  counters: number[];
};

async function takeBefore(env: DrillEnvironment, kind: ProviderKind): Promise<Before> {
  const sql = env.db.adminSql;
  const c = env.connection("database", kind);
  await waitIdle(env, c);
  return {
    c,
    eventsBefore: await snapshotEvents(sql, c.connectionId),
    rowBefore: await readConnection(sql, c.connectionId),
    deliveryMark: env.providers.get(kind)!.deliveryMark(),
    requestMark: env.providers.get(kind)!.requestMark(),
    counters: await Promise.all(
      webhookCounters(kind).map((m) => counterValue(env, m.name, m.labels)),
    ),
  };
}

/** What the outage left for one provider, read while the fault is still in place. */
async function outageEvidence(
  env: DrillEnvironment,
  b: Before,
  marks: { logMark: number; gateMark: number; healthStatus: number | null },
  command: DatabaseOutageEvidence["command"],
): Promise<DatabaseOutageEvidence & { countersAfter: number[] }> {
  const sql = env.db.adminSql;
  const provider = env.providers.get(b.c.kind)!;
  const attempts = env.webhooks.available
    ? provider.notificationAttempts(b.c.calendar, b.deliveryMark)
    : null;
  const countersAfter = await Promise.all(
    webhookCounters(b.c.kind).map((m) => counterValue(env, m.name, m.labels)),
  );
  return {
    connectionId: b.c.connectionId,
    databaseLogs: env.daemon.logsSince(marks.logMark).filter(isHandlerLine(b.c.kind)),
    deliveryIds: (attempts ?? []).flatMap((a) => a.ids ?? []),
    webhookAttempts: attempts,
    webhookNote: env.webhooks.note,
    webhookLatenciesMs: env.gate.requests.slice(marks.gateMark)
      .filter((r) => r.mode === "pass" && r.path === `/webhooks/${b.c.kind}` && r.status > 0)
      .map((r) => r.durationMs),
    // The webhook's own result counter (calendar_webhook_notifications_total), as it moved.
    failuresBefore: b.counters[0],
    failuresAfter: countersAfter[0],
    countersAfter,
    eventsBefore: b.eventsBefore,
    eventsAfter: await snapshotEvents(sql, b.c.connectionId),
    markerRows: 0,
    rowBefore: b.rowBefore,
    rowAfter: await readConnection(sql, b.c.connectionId),
    daemonAlive: env.daemon.alive(),
    healthStatus: marks.healthStatus,
    command,
  };
}

function recordOutageChecks(
  rec: Recorder,
  b: Before,
  e: DatabaseOutageEvidence & { countersAfter: number[] },
): void {
  rec.check(
    "outage",
    "webhook failed with the handler's own logged database error",
    checkDatabaseErrorLogged(e),
  );
  rec.check("outage", "webhook got a 5xx so the provider retries", checkWebhookRejected(e));
  rec.check(
    "outage",
    "webhook failed fast",
    checkFailedFast(e, { deadlineMs: DEADLINE_MS, slackMs: ANSWER_SLACK_MS }),
  );
  rec.check(
    "outage",
    "calsync sync reported the database error",
    checkCommandReportsError(e.command),
  );
  webhookCounters(b.c.kind).forEach((m, i) => {
    const metric = selector(m.labels, m.name);
    rec.check(
      "outage",
      `${metric} went up`,
      checkMetricIncreased({ metric, before: b.counters[i], after: e.countersAfter[i] }),
    );
  });
  rec.check("outage", "no partial rows in external_calendar_events", checkEventsUnchanged(e));
  rec.check(
    "outage",
    "external_calendar_connections not partially updated",
    checkConnectionUntouched(e),
  );
  rec.check("outage", "daemon stayed up", checkDaemonAlive(e));
}

/** After the restore: the provider's redelivery, the operator's retry, the daemon's sync. */
async function recordRecovery(
  env: DrillEnvironment,
  rec: Recorder,
  b: Before,
  marks: {
    outageEnd: number;
    restoredMark: number;
    cutAt: number;
    restoredAt: number;
    variant: string;
  },
): Promise<void> {
  const provider = env.providers.get(b.c.kind)!;
  const after = () =>
    provider.notificationAttempts(b.c.calendar, b.deliveryMark).filter((a) =>
      a.at >= marks.outageEnd
    );
  const redelivered = env.webhooks.available
    ? await waitFor(
      () => after().some((a) => typeof a.status === "number" && a.status < 300) && after(),
      { timeoutMs: 15_000 },
    ) ?? after()
    : null;
  const retry = await operatorSync(env, b.c);
  const recovery = await collectRecovery(env, b.c, marks.restoredMark, 10_000);
  rec.check(
    "recovery",
    "provider's webhook retry accepted",
    checkWebhookRedelivered(redelivered, env.webhooks.note),
  );
  rec.check("recovery", "retried calsync sync succeeded", checkCommandSucceeded(retry));
  rec.check("recovery", "sync succeeded", checkRecoverySync(recovery, "Silent Failures"));
  rec.check("recovery", "data consistent with the provider", checkMirrorMatchesProvider(recovery));
  await rec.verify("recovery", env.db.adminSql, b.c.providerId);
  rec.timeline([
    faultWindow(`database ${marks.variant}`, marks.cutAt, marks.restoredAt),
    ...requestEvents(provider.apiRequests(b.c.calendar, b.requestMark)),
    ...deliveryEvents(provider.notificationAttempts(b.c.calendar, b.deliveryMark)),
    ...recoveryEvents(recovery.successLog),
  ]);
}

async function runOutage(
  env: DrillEnvironment,
  kinds: readonly ProviderKind[],
  variant: string,
  inject: Injector,
  result: ScenarioResult,
): Promise<void> {
  const sql = env.db.adminSql;
  const before = await Promise.all(kinds.map((kind) => takeBefore(env, kind)));
  const logMark = env.daemon.mark();
  const gateMark = env.gate.requests.length;
  const cutAt = Date.now();
  const fault = await inject(env);
  result.notes.push(fault.note);
  let restored = false;
  const recorder = (b: Before) =>
    createRecorder({ scenario: "database", variant, provider: b.c.kind }, result);
  try {
    // A change at each provider pushes a webhook; the operator also asks for a sync.
    for (const { c } of before) {
      env.providers.get(c.kind)!.putEvent(c.calendar, `Database ${variant} change`);
    }
    const commands = await Promise.all(before.map(({ c }) => operatorSync(env, c)));
    await waitFor(() =>
      before.every(({ c, deliveryMark }) =>
        !env.webhooks.available ||
        env.providers.get(c.kind)!.notificationAttempts(c.calendar, deliveryMark).length > 0
      ) && kinds.every((kind) => env.daemon.logsSince(logMark).some(isHandlerLine(kind))), {
      timeoutMs: 8_000,
    });
    const marks = { logMark, gateMark, healthStatus: await env.daemon.health() };
    const outageEnd = Date.now();
    const evidence = [];
    for (const [i, b] of before.entries()) {
      evidence.push(await outageEvidence(env, b, marks, commands[i]));
      await recorder(b).verify("outage", sql, b.c.providerId);
    }
    await fault.restore();
    restored = true;
    const restoredAt = Date.now();
    const restoredMark = env.daemon.mark();
    for (const [i, b] of before.entries()) {
      const rec = recorder(b);
      recordOutageChecks(rec, b, evidence[i]);
      await recordRecovery(env, rec, b, { outageEnd, restoredMark, cutAt, restoredAt, variant });
    }
  } finally {
    if (!restored) await fault.restore();
  }
}

/** Runs the database scenario for the given providers at once (the database is shared). */
export async function runDatabaseScenario(
  env: DrillEnvironment,
  kinds: readonly ProviderKind[],
): Promise<ScenarioResult> {
  const result = emptyResult();
  await runOutage(env, kinds, "cut", cutDatabase, result);
  await runMidWrite(env, kinds, result);
  await runOutage(env, kinds, "pool", exhaustSlots, result);
  return result;
}
