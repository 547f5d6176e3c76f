import { assert, assertEquals } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { listEvents, listOccurrences } from "../../src/storage/calendar_events.ts";
import { providerFixture } from "../support/sync_harness.ts";

const DAY = 86_400_000;
const ENV = { SYNC_WINDOW_PAST_DAYS: "2", SYNC_WINDOW_FUTURE_DAYS: "10" };

Deno.test("Google: the window moves when the clock moves, and the new round trims what fell out", async () => {
  const clock = { now: Date.parse("2026-12-03T08:00:00Z") };
  await using t = await providerFixture("google", () => startFakeGoogle(), {
    now: () => clock.now,
    env: ENV,
  });
  t.fake.putEvent(t.calendar, {
    id: "daily0series",
    summary: "Daily",
    start: { dateTime: "2026-11-01T12:00:00Z", timeZone: "UTC" },
    end: { dateTime: "2026-11-01T12:30:00Z", timeZone: "UTC" },
    recurrence: ["RRULE:FREQ=DAILY"],
  });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const first = (await listEvents(t.db.sql, t.id)).map((r) => r.external_event_id);
  assertEquals(first[0], "daily0series_20261201T120000Z");
  assertEquals(first.at(-1), "daily0series_20261212T120000Z");

  // Five days later the next sync starts a new round over the moved window.
  clock.now += 5 * DAY;
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const moved = (await listEvents(t.db.sql, t.id)).map((r) => r.external_event_id);
  assertEquals(moved[0], "daily0series_20261206T120000Z");
  assertEquals(moved.at(-1), "daily0series_20261217T120000Z");
  const rounds = t.fake.requests.filter((r) => r.path.endsWith("/events") && r.query.timeMin);
  assertEquals(rounds.length, 2, "a full round per window");
});

Deno.test("Graph: the window moves with a new delta round whose last commit sweeps what fell out", async () => {
  const clock = { now: Date.parse("2026-12-03T08:00:00Z") };
  await using t = await providerFixture(
    "microsoft",
    () => startFakeMicrosoft({ defaultPageSize: 2 }),
    { now: () => clock.now, env: { ...ENV, SYNC_CHUNK_EVENTS: "2" } },
  );
  for (let day = 1; day <= 20; day++) {
    const start = Date.parse("2026-11-30T09:00:00Z") + day * DAY;
    t.fake.putEvent(t.calendar, {
      id: `AAMkADday${day}AAA=`,
      subject: `Day ${day}`,
      start: new Date(start).toISOString(),
      end: new Date(start + 3_600_000).toISOString(),
    });
  }
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const before = (await listEvents(t.db.sql, t.id)).map((r) => r.title);
  assert(before.includes("Day 1") && !before.includes("Day 14"), before.join());

  clock.now += 5 * DAY;
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const after = (await listEvents(t.db.sql, t.id)).map((r) => r.title);
  assert(!after.includes("Day 1") && after.includes("Day 17"), after.join());
  const initial = t.fake.requests.filter((r) => r.query.startDateTime);
  assertEquals(initial.length, 2, "a new delta round for the moved window");
});

Deno.test("All-day holidays are found on their date from UTC-8 and from UTC+10", async () => {
  await using t = await providerFixture("google", () => startFakeGoogle(), {
    now: () => Date.parse("2026-12-03T08:00:00Z"),
  });
  t.fake.putEvent(t.calendar, {
    id: "holiday0xmas",
    summary: "Christmas",
    start: { date: "2026-12-25" },
    end: { date: "2026-12-26" },
  });
  t.fake.putEvent(t.calendar, {
    id: "holiday0boxing",
    summary: "Boxing Day",
    start: { date: "2026-12-26" },
    end: { date: "2026-12-27" },
  });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  for (
    const [zone, from, to] of [
      ["America/Los_Angeles", "2026-12-25T08:00:00Z", "2026-12-26T08:00:00Z"],
      ["Australia/Brisbane", "2026-12-24T14:00:00Z", "2026-12-25T14:00:00Z"],
    ]
  ) {
    const rows = await listOccurrences(t.db.sql, t.id, { from, to, zone });
    assertEquals(rows.map((r) => r.title), ["Christmas"], `a day of Dec 25 in ${zone}`);
  }
});
