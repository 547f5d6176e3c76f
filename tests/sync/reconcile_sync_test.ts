import { assert, assertEquals } from "../support/assert.ts";
import { counterValue, expected, mirror } from "../support/sync_harness.ts";
import {
  backoffRunsOut,
  kitFixture,
  reconciliationComesDue,
  scheduleRow,
} from "../support/provider_kits.ts";

for (const kind of ["google", "microsoft"] as const) {
  Deno.test(`${kind}: reconciliation repairs planted drift in one run and counts each kind`, async () => {
    await using t = await kitFixture(kind, { SYNC_RECONCILE_INTERVAL: "24h" });
    const [gone, renamed] = [t.put("Deleted behind our back"), t.put("Renamed behind our back")];
    t.put("Untouched");
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const sql = t.db.sql;
    await sql`delete from external_calendar_events
      where connection_id = ${t.id} and external_event_id = ${gone}`;
    await sql`update external_calendar_events set title = 'Tampered'
      where connection_id = ${t.id} and external_event_id = ${renamed}`;
    await sql`insert into external_calendar_events (connection_id, external_event_id, status, raw)
      values (${t.id}, 'planted-extra', 'confirmed', '{}')`;
    await reconciliationComesDue(sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    assertEquals(await mirror(sql, t.id), expected(t.fake.liveEvents(t.calendar)));
    for (const drift of ["missing", "changed", "extra"]) {
      assertEquals(
        await counterValue(t.harness.metrics, "calendar_sync_drift_repairs_total", {
          provider: kind,
          kind: drift,
        }),
        1,
        drift,
      );
    }
    const row = await scheduleRow(sql, t.id);
    assert(row.last_verified_at !== null, "last_verified_at not set");
    assert(row.reconcile_in_ms! > 86_400_000 - 10_000, `next in ${row.reconcile_in_ms} ms`);
  });

  Deno.test(`${kind}: a clean reconciliation counts no drift`, async () => {
    await using t = await kitFixture(kind);
    t.put("A");
    t.put("B");
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    await reconciliationComesDue(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const metric = await t.harness.metrics.registry.getSingleMetric(
      "calendar_sync_drift_repairs_total",
    )?.get();
    assertEquals(metric?.values.length ?? 0, 0);
    assert((await scheduleRow(t.db.sql, t.id)).last_verified_at !== null);
  });
}

Deno.test("a change the incremental sync would bring is caught up first, not counted as drift", async () => {
  await using t = await kitFixture("google");
  t.put("Before");
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  t.put("Made while nobody looked");
  await reconciliationComesDue(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals(await mirror(t.db.sql, t.id), expected(t.fake.liveEvents(t.calendar)));
  const metric = await t.harness.metrics.registry.getSingleMetric(
    "calendar_sync_drift_repairs_total",
  )?.get();
  assertEquals(metric?.values.length ?? 0, 0);
});

Deno.test("reconciliation never runs during a connection's backoff streak", async () => {
  await using t = await kitFixture("google");
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  t.fake.setFault({ kind: "status", status: 503 }, { target: "api", times: 1 });
  await reconciliationComesDue(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
  await backoffRunsOut(t.db.sql, t.id);
  t.fake.resetRequests();
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const lists = t.fake.requests.filter((r) => r.path.endsWith("/events"));
  assert(lists.every((r) => r.query.syncToken), "the retry after a failure listed everything");
  assertEquals((await scheduleRow(t.db.sql, t.id)).last_verified_at, null);
  // The streak is over: the reconciliation, still due, runs now.
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assert((await scheduleRow(t.db.sql, t.id)).last_verified_at !== null);
});
