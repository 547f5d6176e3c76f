import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { recordGoogleNotification } from "../../src/storage/webhook_dedupe_keys.ts";
import { startScheduler } from "../../src/scheduler/scheduler.ts";
import { runSync } from "../../src/sync/run_sync.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { counterValue, expected, mirror } from "../support/sync_harness.ts";
import {
  addLiveChannel,
  kitFixture,
  pollComesDue,
  reconciliationFarAway,
  scheduleRow,
} from "../support/provider_kits.ts";

const MINUTE = 60_000;
const POLL_ENV = { SYNC_POLL_INTERVAL: "10m", SYNC_POLL_INTERVAL_WITH_PUSH: "5h" };

for (const kind of ["google", "microsoft"] as const) {
  Deno.test(`${kind}: a synced connection is due again within SYNC_POLL_INTERVAL, jittered`, async () => {
    await using t = await kitFixture(kind, POLL_ENV);
    t.put("Planning");
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const first = await scheduleRow(t.db.sql, t.id);
    assert(first.reconcile_in_ms! > 0 && first.reconcile_in_ms! <= 86_400_000, "no reconciliation");
    await reconciliationFarAway(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const row = await scheduleRow(t.db.sql, t.id);
    assertEquals(row.sync_needed, false);
    // Jitter takes up to 10% off; a few seconds of slack for the statement's own now().
    assert(row.due_in_ms <= 10 * MINUTE && row.due_in_ms > 9 * MINUTE - 5_000, `${row.due_in_ms}`);
  });

  Deno.test(`${kind}: with a live push channel the poll waits SYNC_POLL_INTERVAL_WITH_PUSH`, async () => {
    await using t = await kitFixture(kind, POLL_ENV);
    await addLiveChannel(t.db.sql, t.id, kind);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    await reconciliationFarAway(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const row = await scheduleRow(t.db.sql, t.id);
    assert(
      row.due_in_ms <= 300 * MINUTE && row.due_in_ms > 270 * MINUTE - 5_000,
      `${row.due_in_ms}`,
    );
  });

  Deno.test(`${kind}: when the poll comes due nothing needs to ask, and the change is mirrored`, async () => {
    await using t = await kitFixture(kind, POLL_ENV);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    assertEquals(await t.harness.syncOnce(t.id), null, "due before its poll");
    t.put("Unannounced");
    await pollComesDue(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    assertEquals(await mirror(t.db.sql, t.id), expected(t.fake.liveEvents(t.calendar)));
  });

  Deno.test(`${kind}: a poll that finds unannounced changes counts a missed push and polls short`, async () => {
    await using t = await kitFixture(kind, POLL_ENV);
    await addLiveChannel(t.db.sql, t.id, kind);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    t.put("Dropped notification");
    await pollComesDue(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const missed = { provider: kind };
    assertEquals(await counterValue(t.harness.metrics, "calendar_push_missed_total", missed), 1);
    const row = await scheduleRow(t.db.sql, t.id);
    assert(row.push_missed_at !== null, "push_missed_at not set");
    assert(row.due_in_ms <= 10 * MINUTE, `still on the long poll: ${row.due_in_ms}`);
    // A poll that finds nothing new is no miss.
    await pollComesDue(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    assertEquals(await counterValue(t.harness.metrics, "calendar_push_missed_total", missed), 1);
  });
}

Deno.test("a notification after a missed push brings back the long poll", async () => {
  await using t = await kitFixture("google", POLL_ENV);
  const channelId = await addLiveChannel(t.db.sql, t.id, "google");
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  t.put("Dropped notification");
  await pollComesDue(t.db.sql, t.id);
  await t.harness.syncOnce(t.id);
  assertEquals(
    await recordGoogleNotification(t.db.sql, { key: `k-${crypto.randomUUID()}`, channelId }),
    "accepted",
  );
  const notified = await scheduleRow(t.db.sql, t.id);
  assert(notified.last_notification_at !== null, "last_notification_at not recorded");
  t.put("Announced");
  await reconciliationFarAway(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const row = await scheduleRow(t.db.sql, t.id);
  assert(row.due_in_ms > 270 * MINUTE - 5_000, `still on the short poll: ${row.due_in_ms}`);
});

Deno.test("the scheduler's own claim polls an idle connection again and again (compressed)", async () => {
  await using t = await kitFixture("google", { SYNC_POLL_INTERVAL: "200ms" });
  const lists = () => t.fake.countRequests((r) => r.path.endsWith("/events"));
  const scheduler = startScheduler({
    sql: t.db.sql,
    metrics: createMetrics(),
    replicaId: "poll-test",
    concurrency: 2,
    pollIntervalMs: 50,
    leaseMs: 30_000,
    allowlist: null,
    dbDeadlineMs: 10_000,
    runSync: (connection, signal) => runSync(t.harness.deps, connection, signal),
  });
  try {
    // Only the first sync was requested; every later listing is the poll's.
    await waitFor(() => lists() >= 4, { what: "three polls after the first sync" });
    const [row] = await t.db.sql<{ seq: number }[]>`
      select sync_requested_seq::int as seq from external_calendar_connections
      where id = ${t.id}`;
    assertEquals(row.seq, 1);
  } finally {
    await scheduler.stop(1_000);
  }
});

Deno.test("a request during the wait for the poll makes the connection due at once", async () => {
  await using t = await kitFixture("microsoft", POLL_ENV);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  await requestSync(t.db.sql, t.id);
  const row = await scheduleRow(t.db.sql, t.id);
  assert(row.due_in_ms <= 0 && row.sync_needed, `${row.due_in_ms}`);
});
