import { assertEquals } from "../support/assert.ts";
import { incrementalCursor } from "../../bench/fixtures.ts";
import { loadConfig } from "../../src/config/config.ts";
import { cursorForRun, readCursor } from "../../src/sync/cursor.ts";

Deno.test("a seeded incremental cursor resumes the round instead of starting a full one", () => {
  const defaults = loadConfig({});
  const settings = {
    pastDays: defaults.SYNC_WINDOW_PAST_DAYS,
    futureDays: defaults.SYNC_WINDOW_FUTURE_DAYS,
  };
  const now = Date.parse("2026-12-02T12:00:00Z");
  // A stored cursor goes through JSON (jsonb) before a run reads it.
  const stored = JSON.parse(JSON.stringify(incrementalCursor("cal-1", now - 60_000)));
  const start = cursorForRun(readCursor(stored, now, settings), now, settings);
  assertEquals(start.rolled, false);
  assertEquals(start.cursor.fullSyncGeneration, null);
});
