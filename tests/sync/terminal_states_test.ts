import { assert, assertEquals } from "../support/assert.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { connectionRow, counterValue } from "../support/sync_harness.ts";
import { backoffRunsOut, kitFixture, scheduleRow } from "../support/provider_kits.ts";

for (const kind of ["google", "microsoft"] as const) {
  Deno.test(`${kind}: a deleted calendar ends in calendar_unavailable, rows kept, no more requests`, async () => {
    await using t = await kitFixture(kind);
    t.put("Kept");
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    t.fake.setFault(t.calendarGone(), { target: "api" });
    await requestSync(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
    const row = await connectionRow(t.db.sql, t.id);
    assertEquals([row.status, row.last_error?.kind], [
      "calendar_unavailable",
      "calendar_unavailable",
    ]);
    assertEquals(row.last_error?.status, 404);
    assertEquals((await scheduleRow(t.db.sql, t.id)).events, 1);
    assertEquals(
      await counterValue(t.harness.metrics, "calendar_sync_terminal_transitions_total", {
        provider: kind,
        state: "calendar_unavailable",
      }),
      1,
    );
    t.fake.resetRequests();
    await requestSync(t.db.sql, t.id);
    await backoffRunsOut(t.db.sql, t.id);
    assertEquals(await t.harness.syncOnce(t.id), null, "a terminal connection was claimed");
    assertEquals(t.fake.countRequests(), 0);
    // The operator restored the share and forces a sync.
    t.fake.setFault(null, { target: "api" });
    await requestSync(t.db.sql, t.id, { force: true });
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    assertEquals((await connectionRow(t.db.sql, t.id)).status, "active");
  });

  Deno.test(`${kind}: SYNC_MAX_REJECTIONS rejections drop the cursor; a rejected full sync disables`, async () => {
    await using t = await kitFixture(kind, { SYNC_MAX_REJECTIONS: "2" });
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    t.fake.setFault({ kind: "status", status: 400 }, { target: "api" });
    await requestSync(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
    assert((await connectionRow(t.db.sql, t.id)).sync_cursor !== null, "cursor dropped too early");
    await backoffRunsOut(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
    const dropped = await connectionRow(t.db.sql, t.id);
    assertEquals([dropped.status, dropped.sync_cursor, dropped.last_error?.rejections], [
      "active",
      null,
      2,
    ]);
    await backoffRunsOut(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
    const disabled = await connectionRow(t.db.sql, t.id);
    assertEquals([disabled.status, disabled.last_error?.kind], ["disabled", "provider_rejected"]);
    assertEquals(
      await counterValue(t.harness.metrics, "calendar_sync_terminal_transitions_total", {
        provider: kind,
        state: "disabled",
      }),
      1,
    );
  });
}

Deno.test("Microsoft interaction_required, consent_required and login_required ask for re-consent", async () => {
  for (const error of ["interaction_required", "consent_required", "login_required"]) {
    await using t = await kitFixture("microsoft");
    t.fake.setFault({
      kind: "status",
      status: 400,
      body: { error, error_description: `AADSTS50076: ${error}` },
    }, { target: "token" });
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
    const row = await connectionRow(t.db.sql, t.id);
    assertEquals([row.status, row.last_error?.provider_code], ["reauth_required", error], error);
    assertEquals(
      await counterValue(t.harness.metrics, "calendar_sync_terminal_transitions_total", {
        provider: "microsoft",
        state: "reauth_required",
      }),
      1,
    );
  }
});
