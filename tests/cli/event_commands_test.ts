import { assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../../testkit/daemon.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { providerFixture } from "../support/sync_harness.ts";

Deno.test("CLI: events prints a range's occurrences by start, all-day events by date", async () => {
  await using t = await providerFixture("google", () => startFakeGoogle(), {
    now: () => Date.parse("2026-12-03T08:00:00Z"),
  });
  t.fake.putEvent(t.calendar, {
    id: "weekly0series",
    summary: "Stand-up",
    start: { dateTime: "2026-12-07T09:30:00-05:00", timeZone: "America/New_York" },
    end: { dateTime: "2026-12-07T09:45:00-05:00", timeZone: "America/New_York" },
    recurrence: ["RRULE:FREQ=WEEKLY;COUNT=3"],
  });
  t.fake.putEvent(t.calendar, {
    id: "holiday0xmas",
    summary: "Christmas",
    start: { date: "2026-12-25" },
    end: { date: "2026-12-26" },
  });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const env = { DATABASE_URL: t.db.url };
  const json = await runCli([
    "events",
    "--connection",
    t.id,
    "--from",
    "2026-12-13T00:00:00-08:00",
    "--to",
    "2026-12-26T00:00:00-08:00",
    "--zone",
    "America/Los_Angeles",
    "--json",
  ], env);
  assertEquals(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as { id: string; start: string; kind: string }[];
  assertEquals(rows.map((r) => [r.id, r.start, r.kind]), [
    ["weekly0series_20261214T143000Z", "2026-12-14T14:30:00.000Z", "occurrence"],
    ["weekly0series_20261221T143000Z", "2026-12-21T14:30:00.000Z", "occurrence"],
    ["holiday0xmas", "2026-12-25", "single"],
  ]);
  const text = await runCli([
    "events",
    "--connection",
    t.id,
    "--from",
    "2026-12-25T00:00:00Z",
    "--to",
    "2026-12-26T00:00:00Z",
  ], env);
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(text.stdout, "2026-12-25  2026-12-26  Christmas");
  const bad = await runCli(
    ["events", "--connection", t.id, "--from", "2026-12-25", "--to", "x"],
    env,
  );
  assertEquals(bad.code, 2);
});
