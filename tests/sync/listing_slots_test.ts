/**
 * SYNC_LISTING_CONCURRENCY: runs that list a whole calendar hold a page each, so at most that
 * many run at once per replica; incremental runs never wait for a slot.
 */
import { assertEquals, waitFor } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { keyedSlots } from "../../src/lanes/mailbox_slots.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { createFetchGate, providerFixture } from "../support/sync_harness.ts";

Deno.test("full syncs beyond SYNC_LISTING_CONCURRENCY wait for a slot; incremental syncs do not", async () => {
  const gate = createFetchGate("/events");
  let listRequests = 0;
  const counting: typeof fetch = (input, init) => {
    if (String(input).includes("/events")) listRequests++;
    return gate.fetch(input, init);
  };
  await using fixture = await providerFixture("google", () => startFakeGoogle(), {
    calendar: "first",
    fetch: counting,
    env: { SYNC_LISTING_CONCURRENCY: "1" },
  });
  const { fake: google, harness, id: first } = fixture;
  google.addCalendar("second");
  google.putEvent("second", { summary: "listed" });
  const second = await harness.addConnection({
    kind: "google",
    calendar: "second",
    refreshToken: "rt-1",
  });
  // The same limit, observable: load() counts the running run and the waiting one.
  const slots = keyedSlots(1);
  harness.deps.listingSlots = slots;
  const held = gate.close();
  const runs = [harness.syncOnce(first), harness.syncOnce(second)];
  await held;
  await waitFor(() => slots.load("listing") === 2, { what: "the second full sync waiting" });
  assertEquals(listRequests, 1, "the waiting full sync has not listed anything");
  gate.open();
  const outcomes = await Promise.all(runs);
  assertEquals(outcomes.map((o) => o?.outcome), ["success", "success"]);
  assertEquals(slots.load("listing"), 0);
  // With the one slot taken, an incremental sync still runs to the end.
  let free: () => void = () => {};
  const taken = slots.run("listing", () => new Promise<void>((resolve) => (free = resolve)));
  google.putEvent("first", { summary: "news" });
  await requestSync(fixture.db.sql, first);
  const incremental = await harness.syncOnce(first);
  free();
  await taken;
  assertEquals(incremental?.outcome, "success");
});
