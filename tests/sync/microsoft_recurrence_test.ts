import { assertEquals } from "../support/assert.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { listEvents, listSeries } from "../../src/storage/calendar_events.ts";
import { connectionRow, providerFixture } from "../support/sync_harness.ts";
import { expectedView, mirrorView } from "../support/mirror_view.ts";

const DAY = 86_400_000;
const NOW = Date.parse("2026-12-03T08:00:00Z");
const WINDOW = {
  start: new Date(NOW - 7 * DAY).toISOString(),
  end: new Date(NOW + 60 * DAY).toISOString(),
};

/** A fetch that drops the time-zone preference, so the fake answers in its own zone. */
const withoutZonePreference: typeof fetch = (input, init) => {
  const headers = new Headers(init?.headers);
  headers.set(
    "prefer",
    (headers.get("prefer") ?? "").replace(/,?\s*outlook\.timezone="[^"]*"/, ""),
  );
  return fetch(input, { ...init, headers });
};

async function setup(options: { zoneWithoutPrefer?: string; dropPrefer?: boolean } = {}) {
  const fixture = await providerFixture(
    "microsoft",
    () => startFakeMicrosoft({ defaultPageSize: 5, zoneWithoutPrefer: options.zoneWithoutPrefer }),
    {
      now: () => NOW,
      env: { SYNC_WINDOW_PAST_DAYS: "7", SYNC_WINDOW_FUTURE_DAYS: "60" },
      fetch: options.dropPrefer ? withoutZonePreference : undefined,
    },
  );
  const view = () => expectedView(fixture.fake.calendarView(fixture.calendar, WINDOW));
  return Object.assign(fixture, { graph: fixture.fake, view });
}

const MASTER = "AAMkADstandupAAA=";

function putStandup(t: Awaited<ReturnType<typeof setup>>, subject = "Stand-up") {
  return t.graph.putEvent(t.calendar, {
    id: MASTER,
    subject,
    start: "2026-12-07T14:30:00Z",
    end: "2026-12-07T14:45:00Z",
    originalStartTimeZone: "Eastern Standard Time",
    recurrence: {
      pattern: { type: "weekly", interval: 1, daysOfWeek: ["monday"] },
      range: {
        type: "noEnd",
        startDate: "2026-12-07",
        recurrenceTimeZone: "Eastern Standard Time",
      },
    },
  });
}

Deno.test("Graph: a weekly series with a cancelled and a moved occurrence mirrors the calendar view, with the master's fields", async () => {
  await using t = await setup();
  putStandup(t);
  // Cancelled occurrence: Graph no longer lists it.
  t.graph.putEvent(t.calendar, { id: "AAMkADstandupAAA_20261214T143000Z=", type: "exception" });
  t.graph.deleteEvent(t.calendar, "AAMkADstandupAAA_20261214T143000Z=");
  // Moved occurrence: an exception with its own fields.
  t.graph.putEvent(t.calendar, {
    id: "AAMkADstandupAAA_20261221T143000Z=",
    subject: "Stand-up (moved)",
    type: "exception",
    seriesMasterId: MASTER,
    originalStart: "2026-12-21T14:30:00Z",
    start: "2026-12-22T15:00:00Z",
    end: "2026-12-22T15:15:00Z",
  });
  t.graph.putEvent(t.calendar, {
    id: "AAMkADholidayAAA=",
    subject: "Holiday",
    isAllDay: true,
    start: "2026-12-25",
    end: "2026-12-26",
  });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals(await mirrorView(t.db.sql, t.id), t.view());
  const rows = new Map((await listEvents(t.db.sql, t.id)).map((r) => [r.external_event_id, r]));
  const occurrence = rows.get("AAMkADstandupAAA_20261207T143000Z=");
  assertEquals(
    [occurrence?.title, occurrence?.occurrence_kind, occurrence?.series_id, occurrence?.time_zone],
    ["Stand-up", "occurrence", MASTER, "Eastern Standard Time"],
  );
  assertEquals(occurrence?.response_status, "organizer");
  const moved = rows.get("AAMkADstandupAAA_20261221T143000Z=");
  assertEquals(
    [moved?.occurrence_kind, moved?.original_starts_at?.toISOString()],
    ["exception", "2026-12-21T14:30:00.000Z"],
  );
  const holiday = rows.get("AAMkADholidayAAA=");
  assertEquals([holiday?.start_date, holiday?.end_date, holiday?.starts_at], [
    "2026-12-25",
    "2026-12-26",
    null,
  ]);
  assertEquals((await listSeries(t.db.sql, t.id)).map((s) => s.series_id), [MASTER]);
  const masterRequests = t.graph.requests.filter((r) => r.path.includes("/events/"));
  assertEquals(masterRequests.length, 1, "the master is fetched once per run");

  // Incremental: the master is renamed (its occurrences come again) and one more is cancelled.
  putStandup(t, "Daily sync");
  t.graph.putEvent(t.calendar, { id: "AAMkADstandupAAA_20261228T143000Z=", type: "exception" });
  t.graph.deleteEvent(t.calendar, "AAMkADstandupAAA_20261228T143000Z=");
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals(await mirrorView(t.db.sql, t.id), t.view());
  assertEquals(
    (await listEvents(t.db.sql, t.id)).find((r) =>
      r.external_event_id.endsWith("20261207T143000Z=")
    )
      ?.title,
    "Daily sync",
  );
});

Deno.test("Graph: an answer in a Windows zone (no Prefer honoured) still gives UTC instants", async () => {
  await using t = await setup({ zoneWithoutPrefer: "Pacific Standard Time", dropPrefer: true });
  t.graph.putEvent(t.calendar, {
    id: "AAMkADpstAAA=",
    subject: "In Pacific",
    start: "2026-12-08T17:00:00Z",
    end: "2026-12-08T18:00:00Z",
  });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const [row] = await listEvents(t.db.sql, t.id);
  assertEquals(row.starts_at?.toISOString(), "2026-12-08T17:00:00.000Z");
  assertEquals(t.graph.requests.at(-1)?.headers?.prefer?.includes("outlook.timezone"), false);
});

Deno.test("Graph: a zone calsync cannot convert is a classified malformed_response", async () => {
  await using t = await setup({ zoneWithoutPrefer: "Mars Standard Time", dropPrefer: true });
  t.graph.putEvent(t.calendar, { subject: "On Mars" });
  const outcome = await t.harness.syncOnce(t.id);
  assertEquals(
    outcome?.outcome === "failure" ? outcome.kind : outcome?.outcome,
    "malformed_response",
  );
  assertEquals((await connectionRow(t.db.sql, t.id)).last_error?.kind, "malformed_response");
});
