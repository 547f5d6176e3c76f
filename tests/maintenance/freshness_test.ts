import { assert, assertEquals } from "../support/assert.ts";
import { runMaintenance } from "../../src/maintenance/maintenance_loop.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { kitFixture } from "../support/provider_kits.ts";

async function gauge(metrics: ReturnType<typeof createMetrics>, name: string, provider: string) {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => v.labels.provider === provider)?.value;
}

Deno.test("maintenance reports the oldest success and verification and stale connections", async () => {
  await using t = await kitFixture("google");
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  await t.db.sql`update external_calendar_connections set
    last_success_at = now() - interval '2 hours', created_at = now() - interval '3 days'
    where id = ${t.id}`;
  const metrics = createMetrics();
  const poll = { shortMs: 15 * 60_000, longMs: 6 * 3_600_000, reconcileMs: 86_400_000 };
  await runMaintenance({
    sql: t.db.sql,
    metrics,
    dedupeTtlMs: 3_600_000,
    dbDeadlineMs: 10_000,
    poll,
  }, new AbortController().signal);
  const success = await gauge(metrics, "calendar_sync_oldest_success_age_seconds", "google");
  assert(success !== undefined && success >= 7_190 && success < 7_300, `${success}`);
  const verified = await gauge(metrics, "calendar_sync_oldest_verification_age_seconds", "google");
  assert(verified !== undefined && verified >= 3 * 86_400 - 10, `${verified}`);
  // 2 hours > 3 x 15 minutes without a push channel.
  assertEquals(await gauge(metrics, "calendar_sync_stale_connections", "google"), 1);
  assertEquals(await gauge(metrics, "calendar_sync_stale_connections", "microsoft"), 0);
});

Deno.test("maintenance gives pre-006 idle rows their first poll, spread over the interval", async () => {
  await using t = await kitFixture("google");
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  await t.db.sql`update external_calendar_connections set reconcile_due_at = null,
    due_at = now() - interval '1 day' where id = ${t.id}`;
  const backfill = { done: false };
  const poll = { shortMs: 15 * 60_000, longMs: 6 * 3_600_000, reconcileMs: 86_400_000 };
  await runMaintenance({
    sql: t.db.sql,
    metrics: createMetrics(),
    dedupeTtlMs: 3_600_000,
    dbDeadlineMs: 10_000,
    poll,
    backfill,
  }, new AbortController().signal);
  assertEquals(backfill.done, true);
  const [row] = await t.db.sql<{ due_in: number; reconcile: boolean }[]>`
    select extract(epoch from due_at - now())::float8 as due_in,
      reconcile_due_at is not null as reconcile
    from external_calendar_connections where id = ${t.id}`;
  assert(row.reconcile && row.due_in > -5 && row.due_in <= 900, `${row.due_in}`);
});
