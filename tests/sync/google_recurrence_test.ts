import { assert, assertEquals } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { countEvents, listEvents, listSeries } from "../../src/storage/calendar_events.ts";
import { connectionRow, providerFixture } from "../support/sync_harness.ts";
import { expectedView, mirrorView } from "../support/mirror_view.ts";

const DAY = 86_400_000;
// Thursday 2026-12-03, 08:00 UTC: the weeks below are fixed, so the test never depends on today.
const NOW = Date.parse("2026-12-03T08:00:00Z");

async function setup(options: { maxPageSize?: number; clock?: { now: number } } = {}) {
  const clock = options.clock ?? { now: NOW };
  const fixture = await providerFixture(
    "google",
    () => startFakeGoogle({ maxPageSize: options.maxPageSize }),
    { now: () => clock.now, env: { SYNC_WINDOW_PAST_DAYS: "7", SYNC_WINDOW_FUTURE_DAYS: "60" } },
  );
  const view = () =>
    expectedView(
      fixture.fake.calendarView(
        fixture.calendar,
        new Date(clock.now - 7 * DAY).toISOString(),
        new Date(clock.now + 60 * DAY).toISOString(),
      ),
    );
  return Object.assign(fixture, { google: fixture.fake, view, clock });
}

const STANDUP = "standup0series";

function putWeeklyStandup(t: Awaited<ReturnType<typeof setup>>, rule: string[]) {
  return t.google.putEvent(t.calendar, {
    id: STANDUP,
    summary: "Stand-up",
    start: { dateTime: "2026-12-07T09:30:00-05:00", timeZone: "America/New_York" },
    end: { dateTime: "2026-12-07T09:45:00-05:00", timeZone: "America/New_York" },
    recurrence: rule,
  });
}

Deno.test("Google: a weekly series with a cancelled and a moved occurrence mirrors the calendar view, in full and incremental sync", async () => {
  await using t = await setup({ maxPageSize: 7 });
  putWeeklyStandup(t, [
    "RRULE:FREQ=WEEKLY;BYDAY=MO",
    "EXDATE;TZID=America/New_York:20261228T093000",
  ]);
  t.google.putEvent(t.calendar, {
    id: `${STANDUP}_20261214T143000Z`,
    status: "cancelled",
    recurringEventId: STANDUP,
    originalStartTime: { dateTime: "2026-12-14T09:30:00-05:00", timeZone: "America/New_York" },
    start: { dateTime: "2026-12-14T09:30:00-05:00", timeZone: "America/New_York" },
    end: { dateTime: "2026-12-14T09:45:00-05:00", timeZone: "America/New_York" },
  });
  t.google.putEvent(t.calendar, {
    id: `${STANDUP}_20261221T143000Z`,
    summary: "Stand-up (moved)",
    recurringEventId: STANDUP,
    originalStartTime: { dateTime: "2026-12-21T09:30:00-05:00", timeZone: "America/New_York" },
    start: { dateTime: "2026-12-22T10:00:00-05:00", timeZone: "America/New_York" },
    end: { dateTime: "2026-12-22T10:15:00-05:00", timeZone: "America/New_York" },
  });
  t.google.putEvent(t.calendar, {
    id: "single0lunch",
    summary: "Lunch",
    start: { dateTime: "2026-12-08T12:00:00Z" },
    end: { dateTime: "2026-12-08T13:00:00Z" },
  });

  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals(await mirrorView(t.db.sql, t.id), t.view());
  const rows = await listEvents(t.db.sql, t.id);
  const byId = new Map(rows.map((row) => [row.external_event_id, row]));
  assertEquals(byId.has(`${STANDUP}_20261214T143000Z`), false, "cancelled occurrence has a row");
  assertEquals(byId.has(`${STANDUP}_20261228T143000Z`), false, "EXDATE occurrence has a row");
  const moved = byId.get(`${STANDUP}_20261221T143000Z`);
  assertEquals(
    [moved?.occurrence_kind, moved?.series_id, moved?.original_starts_at?.toISOString()],
    ["exception", STANDUP, "2026-12-21T14:30:00.000Z"],
  );
  const plain = byId.get(`${STANDUP}_20261207T143000Z`);
  assertEquals([plain?.occurrence_kind, plain?.time_zone], ["occurrence", "America/New_York"]);
  assertEquals(byId.get("single0lunch")?.occurrence_kind, "single");
  const [series] = await listSeries(t.db.sql, t.id);
  assertEquals(series.series_id, STANDUP);
  assertEquals(
    (series.raw as { recurrence: string[] }).recurrence[0],
    "RRULE:FREQ=WEEKLY;BYDAY=MO",
  );

  // Incremental: cancel another, rename the series, split it "this and following".
  t.google.putEvent(t.calendar, {
    id: `${STANDUP}_20261207T143000Z`,
    status: "cancelled",
    recurringEventId: STANDUP,
    originalStartTime: { dateTime: "2026-12-07T09:30:00-05:00", timeZone: "America/New_York" },
    start: { dateTime: "2026-12-07T09:30:00-05:00", timeZone: "America/New_York" },
    end: { dateTime: "2026-12-07T09:45:00-05:00", timeZone: "America/New_York" },
  });
  putWeeklyStandup(t, ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270111T000000Z"]);
  t.google.putEvent(t.calendar, {
    id: "standup1series",
    summary: "Stand-up v2",
    start: { dateTime: "2027-01-11T10:00:00-05:00", timeZone: "America/New_York" },
    end: { dateTime: "2027-01-11T10:15:00-05:00", timeZone: "America/New_York" },
    recurrence: ["RRULE:FREQ=WEEKLY;BYDAY=MO"],
  });
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assert((await connectionRow(t.db.sql, t.id)).sync_cursor !== null);
  assertEquals(await mirrorView(t.db.sql, t.id), t.view());

  // Deleting a series removes every occurrence it had, even ones Google does not list again.
  t.google.deleteEvent(t.calendar, "standup1series");
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals(await mirrorView(t.db.sql, t.id), t.view());
  assertEquals((await listSeries(t.db.sql, t.id)).map((s) => s.series_id), [STANDUP]);
});

Deno.test("Google: a series without an end yields rows only inside the window", async () => {
  await using t = await setup();
  t.google.putEvent(t.calendar, {
    id: "daily0forever",
    summary: "Daily",
    start: { dateTime: "2020-01-01T08:00:00Z", timeZone: "UTC" },
    end: { dateTime: "2020-01-01T08:10:00Z", timeZone: "UTC" },
    recurrence: ["RRULE:FREQ=DAILY"],
  });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  // 7 days back and 60 ahead of 08:00 on Dec 3: Nov 26 08:00 is at the window's edge (excluded
  // by timeMin, which bounds the end), through Jan 31.
  const count = await countEvents(t.db.sql, t.id);
  assert(count >= 66 && count <= 68, `expected about 67 rows, got ${count}`);
  assertEquals(await mirrorView(t.db.sql, t.id), t.view());
});

Deno.test("Google: DST in New York and Kolkata's half-hour offset give the right instants", async () => {
  await using t = await setup({ clock: { now: Date.parse("2027-03-01T00:00:00Z") } });
  t.google.putEvent(t.calendar, {
    id: "dst0weekly",
    summary: "Across DST",
    start: { dateTime: "2027-03-08T09:00:00-05:00", timeZone: "America/New_York" },
    end: { dateTime: "2027-03-08T10:00:00-05:00", timeZone: "America/New_York" },
    recurrence: ["RRULE:FREQ=WEEKLY;COUNT=2"],
  });
  t.google.putEvent(t.calendar, {
    id: "kolkata0call",
    summary: "Kolkata",
    // Wall time without offset: the zone decides (a valid Google form).
    start: { dateTime: "2027-03-10T09:00:00", timeZone: "Asia/Kolkata" },
    end: { dateTime: "2027-03-10T09:30:00", timeZone: "Asia/Kolkata" },
  });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const rows = new Map(
    (await listEvents(t.db.sql, t.id)).map((
      r,
    ) => [r.external_event_id, r.starts_at?.toISOString()]),
  );
  assertEquals(rows.get("dst0weekly_20270308T140000Z"), "2027-03-08T14:00:00.000Z");
  assertEquals(rows.get("dst0weekly_20270315T130000Z"), "2027-03-15T13:00:00.000Z");
  assertEquals(rows.get("kolkata0call"), "2027-03-10T03:30:00.000Z");
});
