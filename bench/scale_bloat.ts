/**
 * @module Bloat of external_calendar_connections after many claim/complete cycles: the daemon's
 * own claimDueForProvider and completeSync in concurrent loops over the whole table, with heap
 * and index sizes, dead tuples, pgstattuple figures and the HOT share before and after, and which
 * indexed columns each of the two updates changes (any one of them rules HOT out).
 */
import type { Sql } from "../src/storage/client.ts";
import {
  claimDueForProvider,
  type ClaimedConnection,
  completeSync,
  type CompletionSchedule,
} from "../src/storage/connections.ts";
import type { ProviderKind } from "../src/core/provider_kind.ts";
import { inBatches, type Log, secs } from "./scale_generate.ts";

const TABLE = "external_calendar_connections";
const LOOPS_PER_PROVIDER = 2;
const CLAIM = 16;

// Due again at once: the loops walk the table in due order, each row about once per `rows`
// cycles, as a million connections polled every 15 minutes are.
const AGAIN_NOW: CompletionSchedule = {
  shortPollMs: 0,
  longPollMs: 0,
  verified: false,
  reconcileInMs: 86_400_000,
  pushMissed: false,
};

/** Runs `cycles` claim/complete cycles over every connection; report lines. */
export async function bloatAfterCycles(sql: Sql, cycles: number, log: Log): Promise<string[]> {
  await sql`create extension if not exists pgstattuple`;
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(TABLE)}`;
  // Every row due, in random order, then vacuumed: the cycles start from a clean table.
  await inBatches(sql, { label: "making due", total: n, log }, async (tx, from, to) => {
    await tx`update ${tx(TABLE)} c set due_at = now() - random() * interval '1 hour'
      from (select id from ${tx(TABLE)} order by id offset ${from - 1} limit ${to - from + 1}) b
      where c.id = b.id`;
  });
  // Compacted (the upgrade and the line above rewrote every row), so "before" is the table as
  // a fresh load leaves it and the growth is the cycles' alone.
  const compactStarted = performance.now();
  await sql`vacuum (full, analyze) external_calendar_connections`;
  const compactSeconds = secs(compactStarted);
  const columns = await columnsChangedByCycle(sql);
  // Shared statistics are flushed within a second of a backend's last commit.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const before = await snapshot(sql);
  log(`scale: ${cycles.toLocaleString("en")} claim/complete cycles`);
  const started = performance.now();
  let done = 0;
  const loop = async (kind: ProviderKind) => {
    while (done < cycles) {
      const batch = await claimDueForProvider(sql, {
        kind,
        limit: CLAIM,
        leaseMs: 60_000,
        ownerPrefix: `bloat-${kind}`,
        allowlist: null,
      });
      if (batch.length === 0) return;
      await Promise.all(batch.map((c: ClaimedConnection) => completeSync(sql, c, null, AGAIN_NOW)));
      const before = done;
      done += batch.length;
      if (Math.floor(before / 100_000) !== Math.floor(done / 100_000)) {
        log(`scale: ${done.toLocaleString("en")} cycles (${secs(started)} s)`);
      }
    }
  };
  const kinds: ProviderKind[] = ["google", "microsoft"];
  await Promise.all(
    kinds.flatMap((kind) => Array.from({ length: LOOPS_PER_PROVIDER }, () => loop(kind))),
  );
  const seconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const after = await snapshot(sql);
  const updates = after.updates - before.updates;
  const hot = after.hot - before.hot;
  return [
    `Bloat after ${done.toLocaleString("en")} claim/complete cycles over ` +
    `${n.toLocaleString("en")} connections (${LOOPS_PER_PROVIDER * kinds.length} concurrent ` +
    `loops, ${(done / seconds).toFixed(0)} cycles/s, ${seconds.toFixed(0)} s): ` +
    `${updates.toLocaleString("en")} updates, HOT share ` +
    `${updates > 0 ? ((hot / updates) * 100).toFixed(1) : "0"} %, autovacuum ran ` +
    `${after.autovacuums - before.autovacuums} times on the table; before: the table after ` +
    `vacuum full (${compactSeconds} s)`,
    `| when | heap MB | indexes MB | live tuples | dead tuples | pgstattuple dead % | free % | ` +
    `index leaf density % (each) |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    snapshotRow("before", before),
    snapshotRow("after", after),
    ...columns,
    "",
  ];
}

type Snapshot = {
  heapMb: number;
  indexMb: number;
  live: number;
  dead: number;
  deadPercent: number;
  freePercent: number;
  leaf: string;
  updates: number;
  hot: number;
  autovacuums: number;
};

async function snapshot(sql: Sql): Promise<Snapshot> {
  const [stat] = await sql<
    { live: number; dead: number; updates: number; hot: number; autovacuums: number }[]
  >`
    select n_live_tup::float8 as live, n_dead_tup::float8 as dead, n_tup_upd::float8 as updates,
      n_tup_hot_upd::float8 as hot, autovacuum_count::float8 as autovacuums
    from pg_stat_user_tables where relname = ${TABLE}`;
  const [tuple] = await sql<{ heap: number; dead: number; free: number }[]>`
    select table_len / 1048576.0::float8 as heap, dead_tuple_percent::float8 as dead,
      free_percent::float8 as free
    from pgstattuple(${TABLE}::regclass)`;
  const indexes = await sql<{ name: string; mb: number; leaf: number }[]>`
    select c.relname as name, pg_relation_size(i.indexrelid) / 1048576.0::float8 as mb,
      (pgstatindex(i.indexrelid::regclass)).avg_leaf_density::float8 as leaf
    from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid = ${TABLE}::regclass order by c.relname`;
  return {
    heapMb: tuple.heap,
    indexMb: indexes.reduce((sum, index) => sum + index.mb, 0),
    live: stat.live,
    dead: stat.dead,
    deadPercent: tuple.dead,
    freePercent: tuple.free,
    // pgstatindex gives NaN for an index without leaf pages (nothing matches its predicate).
    leaf: indexes.map((index) =>
      `${index.name.replace(`${TABLE}_`, "")} ${
        Number.isNaN(index.leaf) ? "empty" : index.leaf.toFixed(0)
      }`
    )
      .join(", "),
    updates: stat.updates,
    hot: stat.hot,
    autovacuums: stat.autovacuums,
  };
}

function snapshotRow(when: string, s: Snapshot): string {
  return `| ${when} | ${s.heapMb.toFixed(1)} | ${s.indexMb.toFixed(1)} | ` +
    `${s.live.toLocaleString("en")} | ${s.dead.toLocaleString("en")} | ` +
    `${s.deadPercent.toFixed(1)} | ${s.freePercent.toFixed(1)} | ${s.leaf} |`;
}

/**
 * Claims and completes one row, comparing it before and after each statement, and names the
 * changed columns that an index (its key or its predicate) reads: PostgreSQL makes an update
 * heap-only only when none of those changes.
 */
async function columnsChangedByCycle(sql: Sql): Promise<string[]> {
  const indexed = new Set(
    (await sql<{ name: string }[]>`
      select distinct a.attname as name from pg_index i
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum > 0
        and (a.attnum = any(i.indkey)
          or coalesce(pg_get_expr(i.indpred, i.indrelid), '') ~ ('\\m' || a.attname || '\\M'))
      where i.indrelid = ${TABLE}::regclass`).map((row) => row.name),
  );
  const row = async (id: string) =>
    (await sql<{ r: Record<string, unknown> }[]>`
      select to_jsonb(c) as r from external_calendar_connections c where id = ${id}`)[0].r;
  const changed = (a: Record<string, unknown>, b: Record<string, unknown>) =>
    Object.keys(b).filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]));
  // With nothing else claiming, the claim takes the Google row first in due order.
  const [first] = await sql<{ id: string }[]>`
    select c.id from external_calendar_connections c
    join calendar_providers p on p.id = c.provider_id
    where p.kind = 'google' and c.status = 'active' and c.due_at <= now()
    order by c.due_at limit 1`;
  const beforeClaim = await row(first.id);
  const [claimed] = await claimDueForProvider(sql, {
    kind: "google",
    limit: 1,
    leaseMs: 60_000,
    ownerPrefix: "hot-probe",
    allowlist: null,
  });
  const afterClaim = await row(claimed.id);
  await completeSync(sql, claimed, null, AGAIN_NOW);
  const afterComplete = await row(claimed.id);
  const describe = (what: string, columns: string[]) =>
    `${what} changes ${columns.join(", ")}; of them indexed: ` +
    `${columns.filter((c) => indexed.has(c)).join(", ") || "none"}`;
  return [
    claimed.id === first.id
      ? describe("Claim", changed(beforeClaim, afterClaim))
      : "Claim: another row was claimed first (not compared)",
    describe("Completion", changed(afterClaim, afterComplete)),
    `Indexed columns of ${TABLE} (keys and predicates): ${[...indexed].sort().join(", ")}`,
  ];
}
