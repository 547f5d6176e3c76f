import type { ProviderKind } from "../../src/core/provider_kind.ts";
import { listOccurrences } from "../../src/storage/calendar_events.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { assertEquals } from "../support/assert.ts";
import { providerFixture } from "../support/sync_harness.ts";

const NOW = () => Date.parse("2026-12-03T08:00:00Z");

/** A three-day conference (Dec 28, 29, 30; the end date is exclusive) and a timed meeting. */
async function mirrored(kind: ProviderKind) {
  if (kind === "google") {
    const t = await providerFixture("google", () => startFakeGoogle(), { now: NOW });
    t.fake.putEvent(t.calendar, {
      id: "conference",
      summary: "Conference",
      start: { date: "2026-12-28" },
      end: { date: "2026-12-31" },
    });
    t.fake.putEvent(t.calendar, {
      id: "meeting",
      summary: "Meeting",
      start: { dateTime: "2026-12-28T06:00:00Z" },
      end: { dateTime: "2026-12-28T07:00:00Z" },
    });
    return t;
  }
  const t = await providerFixture("microsoft", () => startFakeMicrosoft(), { now: NOW });
  t.fake.putEvent(t.calendar, {
    id: "conference",
    subject: "Conference",
    isAllDay: true,
    start: "2026-12-28",
    end: "2026-12-31",
  });
  t.fake.putEvent(t.calendar, {
    id: "meeting",
    subject: "Meeting",
    start: "2026-12-28T06:00:00Z",
    end: "2026-12-28T07:00:00Z",
  });
  return t;
}

/** One local day in `zone`, whose midnight is `offset` from UTC, as a consumer asks for it. */
function day(date: string, offset: string, zone: string) {
  const next = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return { from: `${date}T00:00:00${offset}`, to: `${next}T00:00:00${offset}`, zone };
}

for (const kind of ["google", "microsoft"] as const) {
  Deno.test(`${kind}: a multi-day all-day event is on its dates in UTC-8 and UTC+10, a timed one at its instant`, async () => {
    await using t = await mirrored(kind);
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
    const ids = async (range: ReturnType<typeof day>) =>
      (await listOccurrences(t.db.sql, t.id, range)).map((row) => row.external_event_id);
    const la = (date: string) => day(date, "-08:00", "America/Los_Angeles");
    const brisbane = (date: string) => day(date, "+10:00", "Australia/Brisbane");
    // 06:00Z on the 28th is the evening of the 27th in Los Angeles, the afternoon of the 28th
    // in Brisbane; the conference is on the 28th, 29th and 30th everywhere.
    assertEquals(await ids(la("2026-12-27")), ["meeting"]);
    assertEquals(await ids(la("2026-12-28")), ["conference"]);
    assertEquals(await ids(la("2026-12-30")), ["conference"]);
    assertEquals(await ids(la("2026-12-31")), []);
    assertEquals(await ids(brisbane("2026-12-27")), []);
    assertEquals(await ids(brisbane("2026-12-28")), ["conference", "meeting"]);
    assertEquals(await ids(brisbane("2026-12-31")), []);
    const [row] = await listOccurrences(t.db.sql, t.id, la("2026-12-29"));
    assertEquals([row.start_date, row.end_date, row.all_day, row.starts_at], [
      "2026-12-28",
      "2026-12-31",
      true,
      null,
    ]);
  });
}
