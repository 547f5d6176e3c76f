import { assertEquals } from "../support/assert.ts";
import type { MirroredEvent } from "../../src/core/mirrored_event.ts";
import { countableDrift, stableWindow } from "../../src/sync/reconcile.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const DAY = 86_400_000;
const WINDOW = { pastDays: 30, futureDays: 365 };

function event(id: string, fields: Partial<MirroredEvent> = {}): MirroredEvent {
  return {
    externalEventId: id,
    etag: null,
    status: "confirmed",
    title: id,
    startsAt: new Date(NOW + DAY).toISOString(),
    endsAt: new Date(NOW + DAY + 3_600_000).toISOString(),
    allDay: false,
    providerUpdatedAt: new Date(NOW - 10 * DAY).toISOString(),
    raw: {},
    ...fields,
  } as MirroredEvent;
}

Deno.test("differences the incremental sync should have brought are drift", () => {
  const drift = countableDrift({
    missing: [event("m")],
    changed: [event("c")],
    extra: [{ id: "x", endsAt: new Date(NOW) }],
  }, { since: NOW, window: null });
  assertEquals(drift, { missing: ["m"], changed: ["c"], extra: ["x"] });
});

Deno.test("an event the provider changed after the run began is news, not drift", () => {
  const fresh = event("new", { providerUpdatedAt: new Date(NOW + 1).toISOString() });
  const drift = countableDrift({ missing: [fresh], changed: [fresh], extra: [] }, {
    since: NOW,
    window: null,
  });
  assertEquals(drift, { missing: [], changed: [], extra: [] });
});

Deno.test("the rolling window moving is not drift", () => {
  const window = stableWindow(WINDOW, DAY, NOW);
  assertEquals(window, { from: NOW - 28 * DAY, to: NOW + 363 * DAY });
  const drift = countableDrift({
    missing: [event("entered", { startsAt: new Date(NOW + 364 * DAY).toISOString() })],
    changed: [],
    extra: [{ id: "aged", endsAt: new Date(NOW - 29 * DAY) }, { id: "kept", endsAt: null }],
  }, { since: NOW, window });
  assertEquals(drift, { missing: [], changed: [], extra: ["kept"] });
});
