/**
 * A claim changes no indexed column, so it is a heap-only update: half of every sync's index
 * churn and dead index entries (the completion must move `due_at`, which the claim indexes).
 */
import { insertConnections } from "../support/connection_rows.ts";
import type { Sql } from "../../src/storage/client.ts";
import { claimDueForProvider, explainClaim, fenceLease } from "../../src/storage/connections.ts";
import { inTransaction } from "../../src/storage/transaction.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { assert, assertEquals } from "../support/assert.ts";

/** Updates and heap-only updates of the connections table within the current transaction. */
async function xactUpdates(sql: Sql) {
  const [row] = await sql<{ updated: number; hot: number }[]>`
    select pg_stat_get_xact_tuples_updated('external_calendar_connections'::regclass)::int
        as updated,
      pg_stat_get_xact_tuples_hot_updated('external_calendar_connections'::regclass)::int as hot`;
  return row;
}

Deno.test("a claim and a run's lease fence are heap-only updates", async () => {
  await using db = await createMigratedDatabase("claim_hot");
  await insertConnections(db.sql, "google", 8);
  const reserved = await db.sql.reserve();
  try {
    const sql = reserved as unknown as Sql;
    await sql`begin`;
    // Counters of a pooled backend may still hold its last transaction's (unflushed) counts.
    const before = await xactUpdates(sql);
    const claimed = await claimDueForProvider(sql, {
      kind: "google",
      limit: 8,
      leaseMs: 60_000,
      ownerPrefix: "test",
      allowlist: null,
    });
    assertEquals(claimed.length, 8);
    const after = await xactUpdates(sql);
    assertEquals([after.updated - before.updated, after.hot - before.hot], [8, 8]);
    await sql`commit`;
  } finally {
    reserved.release();
  }
  // A second claim finds nothing: the lease, not the due time, keeps claimed rows out.
  const again = await claimDueForProvider(db.sql, {
    kind: "google",
    limit: 8,
    leaseMs: 60_000,
    ownerPrefix: "other",
    allowlist: null,
  });
  assertEquals(again.length, 0);
  const [first] = await db.sql<{ id: string; lease_owner: string }[]>`
    select id, lease_owner from external_calendar_connections order by id limit 1`;
  await inTransaction(db.sql, async (tx) => {
    const before = await xactUpdates(tx as unknown as Sql);
    await fenceLease(tx, { id: first.id, leaseOwner: first.lease_owner }, 60_000);
    const after = await xactUpdates(tx as unknown as Sql);
    assertEquals([after.updated - before.updated, after.hot - before.hot], [1, 1]);
  });
});

Deno.test("due_at is in one index, and both claims are ordered range scans of it", async () => {
  await using db = await createMigratedDatabase("claim_index");
  // Every completion moves due_at: each index that holds it costs every completion a write.
  const indexes = await db.sql<{ name: string }[]>`
    select c.relname as name from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid = 'external_calendar_connections'::regclass
      and pg_get_indexdef(i.indexrelid) like '%due_at%'`;
  assertEquals(indexes.map((i) => i.name), ["external_calendar_connections_provider_due_idx"]);
  for (const kind of ["google", "microsoft"] as const) await insertConnections(db.sql, kind, 20);
  const claim = { limit: 5, leaseMs: 60_000, ownerPrefix: "plan", allowlist: null };
  await inTransaction(db.sql, async (tx) => {
    // At 40 rows a sequential scan is cheapest; the question is which index serves the claim.
    await tx`set local enable_seqscan = off`;
    const sql = tx as unknown as Sql;
    for (
      const plan of [
        await explainClaim(sql, claim),
        await explainClaim(sql, { ...claim, kind: "google" }),
      ]
    ) {
      const text = plan.join("\n");
      assert(/Index Scan using external_calendar_connections_provider_due_idx/.test(text), text);
      assert(
        /Index Cond: \(\(provider_id = p\w*\.id\) AND \(due_at <= now\(\)\)\)/.test(text),
        text,
      );
      // The claim reads rows in due order and stops at its limit: no sort of every due row.
      assert(!/Sort Key: c(_\d+)?\.due_at/.test(text), text);
    }
  });
});
