/**
 * @module `deno task bench --scale [--rows N] [--cycles C]`: the tables at a million connections.
 * The claim (latency, claims/s, its EXPLAIN plan) is measured at 1 % and 10 % of N on a database
 * at the current schema, then at N on the big database: N connections, 10 N events, 10 N dedupe
 * keys and N push channels generated server-side at schema 3 (scale_generate.ts), upgraded by
 * the real migrator one migration at a time, each timed under a concurrent writer
 * (scale_migrations.ts). On it: sizes, a mirror read, dedupe pruning, bloat after C
 * claim/complete cycles (scale_bloat.ts) and webhook ingestion over its channels
 * (scale_webhooks.ts). Not in CI: minutes on 2 cores.
 */
import { openSql, type Sql } from "../src/storage/client.ts";
import { claimDueForProvider, completeSync, explainClaim } from "../src/storage/connections.ts";
import { insertProvider } from "../src/storage/calendar_providers.ts";
import { pruneDedupeKeys } from "../src/storage/webhook_dedupe_keys.ts";
import { createScratchDatabase, migrateScratchDatabase } from "../testkit/scratch_database.ts";
import { bloatAfterCycles } from "./scale_bloat.ts";
import {
  addChannels,
  addConnections,
  addDedupeKeys,
  addEvents,
  inBatches,
  type Log,
  type Providers,
  secs,
} from "./scale_generate.ts";
import { BASE_VERSION, migrateTo, timeMigrations } from "./scale_migrations.ts";
import { webhooksAtScale } from "./scale_webhooks.ts";
import { maximum, percentile } from "./stats.ts";

/** What the scale run reports, one block of lines per measurement. */
export type ScaleReport = { lines: string[] };

/** The run's size: `rows` connections (10x as many events and keys), `cycles` for the bloat. */
export type ScalePlan = { rows: number; cycles: number };

const CLAIM_LIMIT = 16;
const DUE_ROWS = 2_000;
const CYCLES = 200;
const EVENTS_PER_CONNECTION = 10;
const POOL = { max: 8, statementTimeoutMs: 3_600_000, applicationName: "bench-scale" };

/** Runs the scale measurements on scratch databases of `server`, dropped at the end. */
export async function benchScale(server: string, plan: ScalePlan, log: Log): Promise<ScaleReport> {
  const table = [
    "| connections | claim p50 ms | claim p99 ms | claims/s (rows) | claim+complete cycles/s | HOT share |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  const plans: string[] = [];
  const sizes = [Math.round(plan.rows / 100), Math.round(plan.rows / 10)]
    .filter((n) => n >= 100 && n < plan.rows);
  const small = await migrateScratchDatabase(
    await createScratchDatabase(server, { purpose: "bench" }),
    POOL,
  );
  log(`scale: scratch database ${small.description} (claims at 1 % and 10 %)`);
  try {
    const providers = await addProviders(small.sql);
    let current = 0;
    for (const size of [...new Set(sizes)]) {
      const seconds = await addConnections(small.sql, {
        providers,
        from: current,
        to: size,
        v1: false,
        log,
      });
      table.push(`<!-- inserted ${size - current} rows in ${seconds.toFixed(1)} s -->`);
      current = size;
      await claimsAt(small.sql, providers, size, { table, plans });
    }
  } finally {
    await small.close();
  }
  const big = await createScratchDatabase(server, { purpose: "bench" });
  log(`scale: scratch database ${big.description} (${plan.rows} connections)`);
  const sql = openSql(big.url, POOL);
  try {
    const lines = await bigDatabase({ sql, url: big.url }, plan, log, { table, plans });
    return { lines: [...table, "", ...plans, ...lines] };
  } finally {
    await sql.end({ timeout: 2 });
    await big.drop();
  }
}

async function addProviders(sql: Sql): Promise<Providers> {
  return {
    google: (await insertProvider(sql, { kind: "google", name: "google", allowlisted: true })).id,
    microsoft: (await insertProvider(sql, { kind: "microsoft", name: "ms", allowlisted: true }))
      .id,
  };
}

/** One line of the claim table and the claim's EXPLAIN at `size` connections. */
async function claimsAt(
  sql: Sql,
  providers: Providers,
  size: number,
  into: { table: string[]; plans: string[] },
) {
  await sql`vacuum analyze external_calendar_connections`;
  const measured = await measureClaims(sql, providers);
  into.table.push(
    `| ${size.toLocaleString("en")} | ${measured.p50.toFixed(2)} | ${measured.p99.toFixed(2)} | ` +
      `${Math.round(measured.claimsPerSecond)} | ${Math.round(measured.cyclesPerSecond)} | ` +
      `${(measured.hotShare * 100).toFixed(1)} % |`,
  );
  await makeDue(sql, providers.google, CLAIM_LIMIT);
  const plan = await explainClaim(sql, {
    kind: "google",
    limit: CLAIM_LIMIT,
    leaseMs: 60_000,
    ownerPrefix: "explain",
    allowlist: null,
  });
  into.plans.push(`EXPLAIN at ${size.toLocaleString("en")} connections:`, ...plan, "");
}

/** Generates the big database at BASE_VERSION, migrates it, and measures what follows. */
async function bigDatabase(
  db: { sql: Sql; url: string },
  plan: ScalePlan,
  log: Log,
  claims: { table: string[]; plans: string[] },
): Promise<string[]> {
  const { sql } = db;
  const rows = plan.rows;
  const events = rows * EVENTS_PER_CONNECTION;
  await migrateTo(sql, BASE_VERSION);
  const providers = await addProviders(sql);
  const generated = {
    connections: await addConnections(sql, { providers, from: 0, to: rows, v1: true, log }),
    events: await addEvents(sql, { connections: rows, perConnection: EVENTS_PER_CONNECTION, log }),
    keys: await addDedupeKeys(sql, events, log),
    channels: await addChannels(sql, rows, log),
  };
  const vacuumStarted = performance.now();
  await sql`vacuum analyze`;
  const lines = [
    `Generated at schema ${BASE_VERSION} in batches of up to 500,000 rows: ` +
    `${rows.toLocaleString("en")} connections in ${generated.connections.toFixed(1)} s, ` +
    `${events.toLocaleString("en")} events in ${generated.events.toFixed(1)} s, ` +
    `${events.toLocaleString("en")} dedupe keys in ${generated.keys.toFixed(1)} s, ` +
    `${rows.toLocaleString("en")} channels in ${generated.channels.toFixed(1)} s; ` +
    `vacuum analyze ${secs(vacuumStarted)} s`,
    "",
    ...await timeMigrations(db, { connections: rows, events, log }),
    "After the upgrade (every v1 row rewritten by 005's full-sync request and 007's move of " +
    "its token):",
    ...await relationSizes(sql, "external_calendar_connections"),
  ];
  await idleAgain(sql, rows, log);
  // As at the smaller sizes: without it the claim steps over a full table's dead index entries
  // (what only the first minutes after an upgrade look like).
  await sql`vacuum analyze external_calendar_connections`;
  await claimsAt(sql, providers, rows, claims);
  lines.push(
    "After making every connection idle again (one more update of every row), a vacuum and the " +
      "claims:",
  );
  lines.push(...await relationSizes(sql, "external_calendar_connections"));
  lines.push(...await readAtScale(sql, events));
  lines.push(...await pruneAtScale(sql, events, log));
  lines.push(...await bloatAfterCycles(sql, plan.cycles, log));
  // Short runs at the smoke test's sizes, where the figures mean nothing anyway.
  lines.push(...await webhooksAtScale(db, rows >= 20_000 ? 5 : 1, log));
  return lines;
}

/**
 * After the upgrade every connection is due (migration 005 asks v1 mirrors for a full sync, 006
 * leaves reconciliation unscheduled): make them idle with a poll due within 15 minutes and a
 * reconciliation within a day, as a running daemon would have left them.
 */
async function idleAgain(sql: Sql, rows: number, log: Log) {
  await inBatches(sql, { label: "idle again", total: rows, log }, async (tx, from, to) => {
    await tx`update external_calendar_connections c set sync_needed = false,
        sync_claimed_seq = c.sync_requested_seq, full_sync_requested_seq = null,
        due_at = now() + random() * interval '15 minutes',
        reconcile_due_at = now() + random() * interval '24 hours'
      from (select id from external_calendar_connections order by id offset ${from - 1}
        limit ${to - from + 1}) b
      where c.id = b.id`;
  });
}

/** Makes `count` of a provider's idle connections due now (as their poll time comes). */
async function makeDue(sql: Sql, providerId: string, count: number) {
  await sql`
    update external_calendar_connections set due_at = now() - interval '1 second'
    where id in (select id from external_calendar_connections
      where provider_id = ${providerId} and lease_owner is null and due_at > now()
      limit ${count})`;
}

type ClaimFigures = {
  p50: number;
  p99: number;
  claimsPerSecond: number;
  cyclesPerSecond: number;
  hotShare: number;
};

/**
 * Makes DUE_ROWS Google rows due, then claims 16 at a time and completes each claimed row the way
 * a sync does (its own statement), CYCLES times or until none is due.
 */
async function measureClaims(sql: Sql, providers: Providers): Promise<ClaimFigures> {
  await makeDue(sql, providers.google, DUE_ROWS);
  const before = await updateCounts(sql);
  const latencies: number[] = [];
  let claimed = 0;
  let claimMs = 0;
  const started = performance.now();
  for (let i = 0; i < CYCLES; i++) {
    const t0 = performance.now();
    const batch = await claimDueForProvider(sql, {
      kind: "google",
      limit: CLAIM_LIMIT,
      leaseMs: 60_000,
      ownerPrefix: "bench",
      allowlist: null,
    });
    const ms = performance.now() - t0;
    latencies.push(ms);
    claimMs += ms;
    if (batch.length === 0) break;
    claimed += batch.length;
    await Promise.all(batch.map((connection) =>
      completeSync(sql, connection, null, {
        shortPollMs: 900_000,
        longPollMs: 21_600_000,
        verified: false,
        reconcileInMs: 86_400_000,
        pushMissed: false,
      })
    ));
  }
  const totalSeconds = (performance.now() - started) / 1000;
  // The statistics collector publishes a backend's counters within a second of its commit.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const after = await updateCounts(sql);
  const updates = after.updates - before.updates;
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    claimsPerSecond: claimed / (claimMs / 1000),
    cyclesPerSecond: claimed / totalSeconds,
    hotShare: updates > 0 ? (after.hot - before.hot) / updates : 0,
  };
}

async function updateCounts(sql: Sql): Promise<{ updates: number; hot: number }> {
  const [row] = await sql<{ updates: number; hot: number }[]>`
    select n_tup_upd::float8 as updates, n_tup_hot_upd::float8 as hot
    from pg_stat_user_tables where relname = 'external_calendar_connections'`;
  return row;
}

/** The table's heap, TOAST and each index, in MB. */
async function relationSizes(sql: Sql, table: string): Promise<string[]> {
  const rows = await sql<{ name: string; mb: number }[]>`
    select ${table} as name, (pg_relation_size(${table}::regclass) / 1048576.0)::float8 as mb
    union all
    select indexrelid::regclass::text, (pg_relation_size(indexrelid) / 1048576.0)::float8
    from pg_index where indrelid = ${table}::regclass`;
  return [
    `Sizes of ${table} (MB): ` + rows.map((row) => `${row.name} ${row.mb.toFixed(1)}`).join(", "),
    "",
  ];
}

/** A connection's 30-day read of the mirror, and the events table's sizes. */
async function readAtScale(sql: Sql, count: number) {
  const [one] = await sql<{ id: string }[]>`
    select connection_id as id from external_calendar_events limit 1`;
  const latencies: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await sql`select external_event_id from external_calendar_events
      where connection_id = ${one.id} and starts_at < now() + interval '30 days'`;
    latencies.push(performance.now() - t0);
  }
  return [
    `Events: ${count.toLocaleString("en")} rows; one connection's 30-day read p50 ` +
    `${percentile(latencies, 50).toFixed(2)} ms`,
    ...await relationSizes(sql, "external_calendar_events"),
  ];
}

/** The generated dedupe keys (half past the TTL) pruned in the daemon's batches of 1,000. */
async function pruneAtScale(sql: Sql, count: number, log: Log) {
  log(`scale: pruning ${count} dedupe keys`);
  await sql`vacuum analyze webhook_dedupe_keys`;
  const batches: number[] = [];
  let pruned = 0;
  const started = performance.now();
  // At most a minute: the per-batch time is the lock each batch holds, the rate gives the total.
  while (performance.now() - started < 60_000) {
    const t0 = performance.now();
    const n = await pruneDedupeKeys(sql, 72 * 3_600_000);
    batches.push(performance.now() - t0);
    pruned += n;
    if (n === 0) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const rate = pruned / seconds;
  return [
    `Dedupe keys: ${count.toLocaleString("en")} keys, ${pruned.toLocaleString("en")} pruned in ` +
    `${seconds.toFixed(1)} s (${Math.round(rate)} keys/s; batch of 1,000 p50 ` +
    `${percentile(batches, 50).toFixed(1)} ms, p99 ${percentile(batches, 99).toFixed(1)} ms, ` +
    `max ${maximum(batches).toFixed(1)} ms: the longest any row lock is held); ` +
    `${(count / 2 / rate / 60).toFixed(1)} min for the expired half at this rate`,
    "",
  ];
}
