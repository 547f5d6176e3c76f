import { assertEquals } from "../support/assert.ts";
import { localToInstant, offsetToInstant, resolveZone } from "../../src/core/event_time.ts";
import { overlapsWindow, windowAt, windowIsStale } from "../../src/core/sync_window.ts";

Deno.test("localToInstant() follows New York across the DST change and Kolkata's half hour", () => {
  assertEquals(
    localToInstant("2027-03-13T09:00:00", "America/New_York"),
    "2027-03-13T14:00:00.000Z",
  );
  assertEquals(
    localToInstant("2027-03-15T09:00:00.0000000", "America/New_York"),
    "2027-03-15T13:00:00.000Z",
  );
  assertEquals(localToInstant("2027-03-10T09:00:00", "Asia/Kolkata"), "2027-03-10T03:30:00.000Z");
  assertEquals(
    localToInstant("2026-12-08T09:00:00", "Pacific Standard Time"),
    "2026-12-08T17:00:00.000Z",
  );
});

Deno.test("an unknown zone converts to null, never to the session zone", () => {
  assertEquals(resolveZone("Mars Standard Time"), null);
  assertEquals(localToInstant("2026-12-08T09:00:00", "Mars Standard Time"), null);
  assertEquals(offsetToInstant("2026-12-08T09:00:00"), null);
  assertEquals(offsetToInstant("2026-12-08T09:00:00+05:30"), "2026-12-08T03:30:00.000Z");
});

Deno.test("a window is stale a day after it was anchored, and all-day dates get a day of slack", () => {
  const now = Date.parse("2026-12-03T08:00:00Z");
  const window = windowAt(now, 1, 1);
  assertEquals(windowIsStale(window, now + 86_399_999), false);
  assertEquals(windowIsStale(window, now + 86_400_000), true);
  assertEquals(windowIsStale(null, now), true);
  const day = (date: string, end: string) => ({
    startsAt: null,
    endsAt: null,
    startDate: date,
    endDate: end,
  });
  assertEquals(overlapsWindow(day("2026-12-04", "2026-12-05"), window), true);
  assertEquals(overlapsWindow(day("2026-12-06", "2026-12-07"), window), false);
});
