/**
 * @module `deno task bench --scale [--rows N]`: the tables at a million connections. Rows are
 * generated server-side (generate_series), then at 1 %, 10 % and 100 % of N connections it
 * measures the per-provider claim (latency, claims/s, its EXPLAIN plan), claim/complete cycles
 * (HOT share), table and index sizes; at N it adds 10 N event rows, 10 N dedupe keys pruned in
 * the daemon's batches, and the time of migration 009's index build. Not in CI: minutes on 2 cores.
 */
import type { Sql } from "../src/storage/client.ts";
import {
  claimDueForProvider,
  completeSync,
  explainClaimForProvider,
} from "../src/storage/connections.ts";
import { insertProvider } from "../src/storage/calendar_providers.ts";
import { pruneDedupeKeys } from "../src/storage/webhook_dedupe_keys.ts";
import { percentile } from "./stats.ts";

/** What the scale run reports, one block of lines per measurement. */
export type ScaleReport = { lines: string[] };

type Providers = { google: string; microsoft: string };

const CLAIM_LIMIT = 16;
const DUE_ROWS = 2_000;
const CYCLES = 200;

/** Runs the scale measurements on a migrated scratch database; `rows` is the largest size. */
export async function benchScale(
  sql: Sql,
  rows: number,
  log: (message: string) => void,
): Promise<ScaleReport> {
  const lines: string[] = [];
  const providers: Providers = {
    google: (await insertProvider(sql, { kind: "google", name: "google", allowlisted: true })).id,
    microsoft: (await insertProvider(sql, { kind: "microsoft", name: "ms", allowlisted: true }))
      .id,
  };
  const sizes = [...new Set([Math.round(rows / 100), Math.round(rows / 10), rows])]
    .filter((n) => n >= 100);
  let current = 0;
  lines.push(
    "| connections | claim p50 ms | claim p99 ms | claims/s (rows) | claim+complete cycles/s | HOT share |",
  );
  lines.push("| --- | --- | --- | --- | --- | --- |");
  const plans: string[] = [];
  for (const size of sizes) {
    log(`scale: growing to ${size} connections`);
    const started = performance.now();
    await addConnections(sql, providers, current, size);
    lines.push(`<!-- inserted ${size - current} rows in ${secs(started)} s -->`);
    current = size;
    await sql`vacuum analyze external_calendar_connections`;
    const measured = await measureClaims(sql, providers);
    lines.push(
      `| ${size.toLocaleString("en")} | ${measured.p50.toFixed(2)} | ${
        measured.p99.toFixed(2)
      } | ` +
        `${Math.round(measured.claimsPerSecond)} | ${Math.round(measured.cyclesPerSecond)} | ` +
        `${(measured.hotShare * 100).toFixed(1)} % |`,
    );
    await makeDue(sql, providers.google, CLAIM_LIMIT);
    const plan = await explainClaimForProvider(sql, {
      kind: "google",
      limit: CLAIM_LIMIT,
      leaseMs: 60_000,
      ownerPrefix: "explain",
      allowlist: null,
    });
    plans.push(`EXPLAIN at ${size.toLocaleString("en")} connections:`, ...plan, "");
  }
  lines.push("", ...plans);
  lines.push(...await relationSizes(sql, "external_calendar_connections"));
  lines.push(...await eventsAtScale(sql, rows * 10, log));
  lines.push(...await pruneAtScale(sql, rows * 10, log));
  lines.push(...await migrationAtScale(sql, current, log));
  return { lines };
}

function secs(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1);
}

/** Adds idle connections `from`..`to`, half per provider, each due for its poll within 15 min. */
async function addConnections(sql: Sql, providers: Providers, from: number, to: number) {
  await sql`
    insert into external_calendar_connections (provider_id, external_calendar_id, refresh_token,
      sync_needed, due_at, reconcile_due_at, last_success_at, sync_requested_seq,
      sync_claimed_seq)
    select case when g % 2 = 0 then ${providers.google}::uuid else ${providers.microsoft}::uuid end,
      'calendar-' || g, 'rt', false, now() + random() * interval '15 minutes',
      now() + random() * interval '24 hours', now(), 1, 1
    from generate_series(${from + 1}::int, ${to}::int) g`;
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

/** 10 event rows per connection, generated server-side, then a mirror read's latency. */
async function eventsAtScale(sql: Sql, count: number, log: (message: string) => void) {
  log(`scale: generating ${count} event rows`);
  const started = performance.now();
  const perConnection = 10;
  await sql`
    insert into external_calendar_events (connection_id, external_event_id, status, title,
      starts_at, ends_at, raw, occurrence_kind)
    select c.id, 'event-' || g, 'confirmed', 'Event ' || g,
      now() + g * interval '1 day', now() + g * interval '1 day' + interval '1 hour',
      jsonb_build_object('id', 'event-' || g, 'summary', 'Event ' || g), 'single'
    from (select id from external_calendar_connections
      limit ${Math.ceil(count / perConnection)}) c
    cross join generate_series(1, ${perConnection}) g`;
  const insertSeconds = secs(started);
  await sql`vacuum analyze external_calendar_events`;
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
    `Events: ${count.toLocaleString("en")} rows inserted in ${insertSeconds} s; one ` +
    `connection's 30-day read p50 ${percentile(latencies, 50).toFixed(2)} ms`,
    ...await relationSizes(sql, "external_calendar_events"),
  ];
}

/** `count` dedupe keys, half past the TTL, pruned in the daemon's batches of 1,000. */
async function pruneAtScale(sql: Sql, count: number, log: (message: string) => void) {
  log(`scale: generating ${count} dedupe keys`);
  await sql`
    insert into webhook_dedupe_keys (key, provider, received_at)
    select 'google:bench:' || g, 'google',
      case when g % 2 = 0 then now() - interval '4 days' else now() end
    from generate_series(1, ${count}::int) g`;
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
    `max ${Math.max(...batches).toFixed(1)} ms: the longest any row lock is held); ` +
    `${(count / 2 / rate / 60).toFixed(1)} min for the expired half at this rate`,
    "",
  ];
}

/** Migration 009's one slow statement, the index build, timed on the full table. */
async function migrationAtScale(sql: Sql, rows: number, log: (message: string) => void) {
  log("scale: rebuilding migration 009's index concurrently");
  await sql`drop index if exists external_calendar_connections_provider_due_idx`;
  const started = performance.now();
  await sql`create index concurrently if not exists external_calendar_connections_provider_due_idx
    on external_calendar_connections (provider_id, due_at) where status = 'active'`;
  return [
    `Migration 009 on ${rows.toLocaleString("en")} connections: the index builds CONCURRENTLY in ` +
    `${secs(started)} s (writes go on meanwhile); its table statement is instant.`,
  ];
}
