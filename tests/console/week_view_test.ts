import { assertEquals } from "../support/assert.ts";
import { placeEvents, renderWeek, weekStart } from "../../src/console/week_view.ts";

const ev = (fields: Partial<Parameters<typeof placeEvents>[1][number]>) => ({
  title: "t",
  starts_at: null,
  ends_at: null,
  start_date: null,
  end_date: null,
  status: "confirmed",
  ...fields,
});

Deno.test("a week starts on Monday, midnight UTC, also from a Sunday evening", () => {
  assertEquals(
    weekStart(new Date("2026-12-02T15:00:00Z")).toISOString(),
    "2026-11-30T00:00:00.000Z",
  );
  assertEquals(
    weekStart(new Date("2026-12-06T23:59:00Z")).toISOString(),
    "2026-11-30T00:00:00.000Z",
  );
  assertEquals(
    weekStart(new Date("2026-11-30T00:00:00Z")).toISOString(),
    "2026-11-30T00:00:00.000Z",
  );
});

Deno.test("events land on each day they overlap; all-day end dates are exclusive", () => {
  const start = weekStart(new Date("2026-12-02T00:00:00Z"));
  const days = placeEvents(start, [
    ev({
      title: "tue",
      starts_at: new Date("2026-12-01T09:00:00Z"),
      ends_at: new Date("2026-12-01T10:00:00Z"),
    }),
    ev({
      title: "overnight",
      starts_at: new Date("2026-12-02T23:00:00Z"),
      ends_at: new Date("2026-12-03T01:00:00Z"),
    }),
    ev({ title: "allday", start_date: "2026-12-05", end_date: "2026-12-06" }),
    ev({
      title: "zero",
      starts_at: new Date("2026-12-04T12:00:00Z"),
      ends_at: new Date("2026-12-04T12:00:00Z"),
    }),
    ev({
      title: "next week",
      starts_at: new Date("2026-12-07T09:00:00Z"),
      ends_at: new Date("2026-12-07T10:00:00Z"),
    }),
  ]);
  assertEquals(days.map((d) => d.map((e) => e.title)), [
    [],
    ["tue"],
    ["overnight"],
    ["overnight"],
    ["zero"],
    ["allday"],
    [],
  ]);
});

Deno.test("the week view escapes titles", async () => {
  const start = weekStart(new Date("2026-12-02T00:00:00Z"));
  const text = (await renderWeek(start, [
    ev({
      title: "<b>x</b>",
      starts_at: new Date("2026-12-01T09:00:00Z"),
      ends_at: new Date("2026-12-01T10:00:00Z"),
    }),
  ], "/console/connections/x")).toString();
  assertEquals(text.includes("<b>x</b>"), false);
  assertEquals(text.includes("&lt;b&gt;x&lt;/b&gt;"), true);
});
