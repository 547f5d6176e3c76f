import { assert, assertEquals } from "../support/assert.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { listHeldDeletions } from "../../src/storage/held_event_deletions.ts";
import { releaseDeletions } from "../../src/sync/release_deletions.ts";
import { connectionRow, counterValue, expected, mirror } from "../support/sync_harness.ts";
import { kitFixture, scheduleRow } from "../support/provider_kits.ts";

for (const kind of ["google", "microsoft"] as const) {
  Deno.test(`${kind}: a sync deleting most rows commits its upserts and holds the deletions`, async () => {
    await using t = await kitFixture(kind);
    const ids = Array.from({ length: 30 }, (_, i) => t.put(`Event ${i}`));
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    for (const id of ids.slice(0, 25)) t.remove(id);
    const added = t.put("Added meanwhile");
    await requestSync(t.db.sql, t.id);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const row = await scheduleRow(t.db.sql, t.id);
    assertEquals([row.status, row.events, row.held], ["deletions_held", 31, 25]);
    assert((await mirror(t.db.sql, t.id)).some((line) => line.startsWith(`${added}|`)));
    assertEquals(
      await counterValue(t.harness.metrics, "calendar_sync_deletions_held_total", {
        provider: kind,
      }),
      25,
    );
    await requestSync(t.db.sql, t.id);
    assertEquals(await t.harness.syncOnce(t.id), null, "a connection holding deletions synced");

    const released = await releaseDeletions(t.db.sql, t.id, { discard: false });
    assertEquals(released, { held: 25, deleted: 25, discarded: false });
    assertEquals(await mirror(t.db.sql, t.id), expected(t.fake.liveEvents(t.calendar)));
    assertEquals((await connectionRow(t.db.sql, t.id)).status, "active");
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  });

  Deno.test(`${kind}: an empty full listing for a calendar with rows deletes nothing until released`, async () => {
    await using t = await kitFixture(kind);
    for (let i = 0; i < 3; i++) t.put(`Event ${i}`);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    t.fake.setFault(t.emptyListing(), { target: "api", times: 1 });
    await requestSync(t.db.sql, t.id, { full: true });
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const row = await scheduleRow(t.db.sql, t.id);
    assertEquals([row.status, row.events, row.held], ["deletions_held", 3, 3]);

    assertEquals(await releaseDeletions(t.db.sql, t.id, { discard: true }), {
      held: 3,
      deleted: 0,
      discarded: true,
    });
    assertEquals(await listHeldDeletions(t.db.sql, t.id), []);
    assertEquals((await scheduleRow(t.db.sql, t.id)).events, 3);
    // The bogus cursor of the faulty answer is forgotten by the provider: a full sync follows.
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    assertEquals(await mirror(t.db.sql, t.id), expected(t.fake.liveEvents(t.calendar)));
  });
}

Deno.test("deletions under the guard's thresholds go through", async () => {
  await using t = await kitFixture("google");
  const ids = Array.from({ length: 30 }, (_, i) => t.put(`Event ${i}`));
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  for (const id of ids.slice(0, 15)) t.remove(id);
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals([
    (await scheduleRow(t.db.sql, t.id)).status,
    (await scheduleRow(t.db.sql, t.id)).events,
  ], [
    "active",
    15,
  ]);
});

Deno.test("release-deletions refuses a connection that holds nothing", async () => {
  await using t = await kitFixture("google");
  assertEquals(await releaseDeletions(t.db.sql, t.id, { discard: false }), null);
});
