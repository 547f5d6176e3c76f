/**
 * A claim changes no indexed column, so it is a heap-only update: half of every sync's index
 * churn and dead index entries (the completion must move `due_at`, which the claim indexes).
 */
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import type { Sql } from "../../src/storage/client.ts";
import {
  claimDueForProvider,
  fenceLease,
  insertConnection,
} from "../../src/storage/connections.ts";
import { inTransaction } from "../../src/storage/transaction.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { assertEquals } from "../support/assert.ts";

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
  const provider = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  for (let i = 0; i < 8; i++) {
    await insertConnection(db.sql, {
      providerId: provider.id,
      externalCalendarId: `calendar-${i}`,
      refreshToken: "rt",
      accountLabel: null,
    });
  }
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
