import { assertEquals, assertRejects } from "../support/assert.ts";
import { googleEventChange } from "../../src/providers/google_event.ts";
import { graphEventChange } from "../../src/providers/graph_event.ts";
import { windowAt } from "../../src/core/sync_window.ts";
import { SyncFailure } from "../../src/failures/failure.ts";

const window = windowAt(Date.parse("2026-12-03T08:00:00Z"), 30, 365);

Deno.test("Google: responses, busy status and event type map to one vocabulary", () => {
  const change = googleEventChange({
    id: "e1",
    start: { dateTime: "2026-12-08T09:00:00-05:00" },
    end: { dateTime: "2026-12-08T10:00:00-05:00" },
    attendees: [{ email: "me@example.com", self: true, responseStatus: "declined" }],
    organizer: { email: "boss@example.com" },
    eventType: "focusTime",
    transparency: "opaque",
  }, { window, calendarZone: "UTC" });
  if (change.op !== "upsert") throw new Error("expected an upsert");
  const e = change.event;
  assertEquals(
    [e.startsAt, e.responseStatus, e.busyStatus, e.blocksTime, e.eventType, e.organizerEmail],
    ["2026-12-08T14:00:00.000Z", "declined", "busy", false, "focus_time", "boss@example.com"],
  );
});

Deno.test("Google: an event outside the window and a cancelled instance both delete", () => {
  const outside = googleEventChange({
    id: "old",
    start: { dateTime: "2020-01-01T09:00:00Z" },
    end: { dateTime: "2020-01-01T10:00:00Z" },
  }, { window, calendarZone: null });
  assertEquals(outside, { op: "delete", externalEventId: "old" });
  const cancelled = googleEventChange({
    id: "s_20261207T143000Z",
    status: "cancelled",
    recurringEventId: "s",
  }, { window, calendarZone: null });
  assertEquals(cancelled, { op: "delete", externalEventId: "s_20261207T143000Z" });
});

Deno.test("Graph: tentativelyAccepted, notResponded and oof map to the shared vocabulary", () => {
  const base = {
    id: "g1",
    start: { dateTime: "2026-12-08T17:00:00.0000000", timeZone: "UTC" },
    end: { dateTime: "2026-12-08T18:00:00.0000000", timeZone: "UTC" },
  };
  const map = (extra: Record<string, unknown>) => {
    const change = graphEventChange({ ...base, ...extra }, { window });
    if (change.op !== "upsert") throw new Error("expected an upsert");
    return change.event;
  };
  assertEquals(
    map({ responseStatus: { response: "tentativelyAccepted" } }).responseStatus,
    "tentative",
  );
  assertEquals(
    map({ responseStatus: { response: "notResponded" } }).responseStatus,
    "needs_action",
  );
  const oof = map({ showAs: "oof", sensitivity: "private" });
  assertEquals([oof.busyStatus, oof.eventType, oof.visibility], [
    "out_of_office",
    "out_of_office",
    "private",
  ]);
  assertEquals(graphEventChange({ ...base, isCancelled: true }, { window }).op, "delete");
});

Deno.test("Graph: an offset-less time in an unknown zone is a malformed_response", async () => {
  await assertRejects(
    () =>
      Promise.resolve().then(() =>
        graphEventChange({
          id: "g2",
          start: { dateTime: "2026-12-08T09:00:00.0000000", timeZone: "Mars Standard Time" },
          end: { dateTime: "2026-12-08T10:00:00.0000000", timeZone: "Mars Standard Time" },
        }, { window })
      ),
    SyncFailure,
    "cannot be converted",
  );
});
