/**
 * @module Scheduler throughput: N due connections whose fake answers an empty incremental page,
 * drained by 1 and by 3 daemon replicas, beside the claim statement alone in a loop.
 */
import type { Sql } from "../src/storage/client.ts";
import { claimDueConnections } from "../src/storage/connections.ts";
import { DEFAULT_LANE_CONCURRENCY } from "../src/config/config.ts";
import type { Daemon } from "../testkit/daemon.ts";
import { type FakeGoogle, startFakeGoogle } from "../testkit/fake_google.ts";
import { startBenchDaemon, stopDaemons } from "./bench_daemon.ts";
import { coresBusySince, markMachine } from "./cpu_usage.ts";
import { countDoubleSyncs, type DoubleSyncs } from "./double_syncs.ts";
import {
  countFailing,
  countPending,
  fakeSyncToken,
  incrementalCursor,
  insertBenchProvider,
  requestAllSyncs,
  retireProvider,
  type SeededConnection,
  seedIdleConnections,
} from "./fixtures.ts";
import type { BenchContext, Row } from "./report.ts";
import { summarize } from "./stats.ts";

const CLAIM_BATCH = 50;

type RunKind = "warm1" | "cold1" | "cold3";
type Run = { seconds: number; doubles: DoubleSyncs; cores: number | null };

const RUNS: Record<RunKind, { label: string; notes: string }> = {
  warm1: {
    label: "1 replica, defaults, warm",
    notes: "a sync: claim, one incremental list call, the completing write; tokens cached " +
      "(second drain of the daemon); target >= 2,000/s",
  },
  cold1: {
    label: "1 replica, defaults, cold",
    notes:
      `fresh daemon, default lanes (${DEFAULT_LANE_CONCURRENCY} per provider): every sync also refreshes its ` +
      "access token",
  },
  cold3: {
    label: "3 replicas, defaults, cold",
    notes: "3 fresh daemons on one database; target: drains faster than 1 replica",
  },
};

function coresBusy(runs: readonly Run[]): string {
  const known = runs.map((run) => run.cores).filter((c): c is number => c !== null);
  return known.length > 0 ? summarize(known).median.toFixed(1) : "?";
}

/** Measures drains with 1 and 3 replicas and the claim-only ceiling. */
export async function benchScheduler(
  ctx: BenchContext,
  db: { url: string; sql: Sql },
  count: number,
): Promise<Row[]> {
  const google = startFakeGoogle();
  google.addRefreshToken("rt-sched");
  const providerId = await insertBenchProvider(db.sql, "sched");
  try {
    const connections = await seedIdleConnections(db.sql, {
      providerId,
      count,
      calendarPrefix: "sched-",
      refreshToken: "rt-sched",
      cursorFor: (calendarId) => incrementalCursor(calendarId),
      syncedBefore: true,
    });
    for (const connection of connections) google.addCalendar(connection.calendarId);
    // Fresh statistics, as autovacuum would have them, so every claim plans an index scan.
    await db.sql`vacuum analyze external_calendar_connections`;
    await checkIncrementalPage(google, connections[0].calendarId);

    const queue = { providerId, connections };
    const claimRates: number[] = [];
    const coldConcurrent: number[] = [];
    const runs: Record<RunKind, Run[]> = { warm1: [], cold1: [], cold3: [] };
    for (let rep = 0; rep < ctx.reps; rep++) {
      claimRates.push(await claimOnly(db.sql, providerId, count));
      const [first, second] = await drainWith(db, google, queue, {
        replicas: 1,
        env: {},
        drains: 2,
      });
      coldConcurrent.push(count / first.seconds);
      runs.warm1.push(second);
      runs.cold1.push((await drainWith(db, google, queue, { replicas: 1, env: {}, drains: 1 }))[0]);
      runs.cold3.push((await drainWith(db, google, queue, { replicas: 3, env: {}, drains: 1 }))[0]);
      ctx.log(
        `scheduler ${count}: ` +
          (Object.keys(RUNS) as RunKind[]).map((kind) =>
            `${kind} ${Math.round(count / runs[kind][rep].seconds)}/s ` +
            `(double ${runs[kind][rep].doubles.concurrent}, repeat ${
              runs[kind][rep].doubles.repeated
            })`
          ).join("; ") + `; claim-only ${Math.round(claimRates[rep])} rows/s`,
      );
    }
    const claimCeiling = summarize(claimRates);
    const claimDrain = summarize(claimRates.map((rate) => count / rate));
    const doubles = Object.values(runs).flat().map((run) => run.doubles);
    const rows: Row[] = [];
    for (const kind of Object.keys(RUNS) as RunKind[]) {
      const cold = kind === "warm1"
        ? `; its first, cold drain ${Math.round(summarize(coldConcurrent).median)}/s`
        : "";
      rows.push({
        id: `scheduler_syncs_per_s_${kind}`,
        metric: `Scheduler: no-op syncs/s, ${RUNS[kind].label}`,
        unit: "syncs/s",
        better: "higher",
        calsync: summarize(runs[kind].map((run) => count / run.seconds)),
        ceiling: claimCeiling,
        notes: `${RUNS[kind].notes}${cold}; cores busy ${coresBusy(runs[kind])} of ` +
          `${navigator.hardwareConcurrency}; ceiling: the claim statement alone, batches of ` +
          `${CLAIM_BATCH}`,
      });
      rows.push({
        id: `scheduler_drain_s_${kind}`,
        metric: `Scheduler: drain ${count.toLocaleString("en-US")} due, ${RUNS[kind].label}`,
        unit: "s",
        better: "lower",
        calsync: summarize(runs[kind].map((run) => run.seconds)),
        ceiling: claimDrain,
        notes:
          "from marking all due to none left; ceiling: the claim-only loop over the same queue",
      });
    }
    rows.push({
      id: "scheduler_double_syncs",
      metric: "Scheduler: concurrent double syncs",
      unit: "",
      better: "lower",
      calsync: summarize(doubles.map((d) => d.concurrent)),
      ceiling: null,
      notes: "must be 0: per connection, sync intervals (commit time and duration from every " +
        "replica's log) that overlap; connections synced twice in a drain (logs or the fake's " +
        `list log): ${Math.max(...doubles.map((d) => d.repeated))}`,
    });
    return rows;
  } finally {
    await google.close();
    await retireProvider(db.sql, providerId);
  }
}

async function checkIncrementalPage(google: FakeGoogle, calendarId: string): Promise<void> {
  const url = `${google.baseUrl}/calendars/${encodeURIComponent(calendarId)}/events` +
    `?maxResults=2500&syncToken=${fakeSyncToken(calendarId)}`;
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${google.issueAccessToken()}` },
  });
  const body = await response.json();
  if (response.status !== 200 || !body.nextSyncToken || body.items.length !== 0) {
    throw new Error(`The fake does not answer an empty incremental page: ${response.status}`);
  }
}

/** Claims the whole queue with the claim statement alone; resolves to rows claimed per second. */
async function claimOnly(sql: Sql, providerId: string, count: number): Promise<number> {
  await requestAllSyncs(sql, providerId);
  const started = performance.now();
  let claimed = 0;
  for (;;) {
    const batch = await claimDueConnections(sql, {
      limit: CLAIM_BATCH,
      leaseMs: 600_000,
      ownerPrefix: "bench-ceiling",
      allowlist: null,
    });
    if (batch.length === 0) break;
    claimed += batch.length;
  }
  const seconds = (performance.now() - started) / 1000;
  if (claimed !== count) throw new Error(`Claim-only loop claimed ${claimed} of ${count}`);
  await settleAll(sql, providerId, { releaseLeases: true });
  return claimed / seconds;
}

/**
 * Returns every connection to idle so the next run starts from the same state. Nothing is due
 * until that run asks: running daemons would otherwise poll every connection between runs, and
 * those syncs would spill into the next drain. Only the claim-only loop's leases are released
 * here; a daemon's lease is the daemon's to give back.
 */
async function settleAll(
  sql: Sql,
  providerId: string,
  options: { releaseLeases: boolean },
): Promise<void> {
  await sql`
    update external_calendar_connections set sync_needed = false,
      due_at = now() + interval '1 day', sync_claimed_seq = sync_requested_seq
    where provider_id = ${providerId}`;
  if (options.releaseLeases) {
    await sql`
      update external_calendar_connections set lease_owner = null, lease_expires_at = null
      where provider_id = ${providerId} and lease_owner is not null`;
  }
  await sql`vacuum analyze external_calendar_connections`;
}

/** Starts fresh daemons (cold token caches, so 1 and 3 compare) and drains the queue `drains` times. */
async function drainWith(
  db: { url: string; sql: Sql },
  google: FakeGoogle,
  queue: { providerId: string; connections: readonly SeededConnection[] },
  options: { replicas: number; env: Record<string, string>; drains: number },
): Promise<Run[]> {
  const env = {
    DATABASE_URL: db.url,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    // The fake has no quota: measure calsync, not the default 10,000/min bucket (~167 syncs/s).
    GOOGLE_QUOTA_PER_MINUTE: "100000000",
    ...options.env,
  };
  const daemons: Daemon[] = await Promise.all(
    Array.from({ length: options.replicas }, () => startBenchDaemon(env)),
  );
  try {
    const runs: Run[] = [];
    for (let i = 0; i < options.drains; i++) {
      runs.push(await drainOnce(db.sql, google, daemons, queue));
    }
    return runs;
  } finally {
    await stopDaemons(daemons);
  }
}

async function drainOnce(
  sql: Sql,
  google: FakeGoogle,
  daemons: readonly Daemon[],
  input: { providerId: string; connections: readonly SeededConnection[] },
): Promise<Run> {
  google.resetRequests();
  for (const daemon of daemons) daemon.logs.length = 0;
  const startedAt = Date.now();
  const mark = markMachine();
  const started = performance.now();
  try {
    await requestAllSyncs(sql, input.providerId);
    const timeoutMs = 60_000 + input.connections.length * 20;
    for (;;) {
      if ((await countPending(sql, input.providerId)) === 0) break;
      if (performance.now() - started > timeoutMs) {
        const failing = await countFailing(sql, input.providerId);
        throw new Error(
          `Scheduler drain did not finish within ${timeoutMs} ms (${failing} failing)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const seconds = (performance.now() - started) / 1000;
    const cores = coresBusySince(mark);
    const failing = await countFailing(sql, input.providerId);
    if (failing > 0) throw new Error(`${failing} connections failed to sync during the drain`);
    // Log lines arrive through a pipe: give the last ones a moment before counting.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const doubles = countDoubleSyncs({
      logs: daemons.flatMap((daemon) => daemon.logs),
      requests: google.requests.filter((r) => r.at >= startedAt),
      expected: input.connections.length,
    });
    return { seconds, doubles, cores };
  } finally {
    await settleAll(sql, input.providerId, { releaseLeases: false });
  }
}
