import { assert, assertEquals } from "../support/assert.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { requestSync } from "../../src/storage/connections.ts";
import {
  connectionRow,
  counterValue,
  expected,
  mirror,
  providerFixture,
} from "../support/sync_harness.ts";

async function setup(options: { rotateStrict?: boolean; env?: Record<string, string> } = {}) {
  const fixture = await providerFixture(
    "microsoft",
    () => startFakeMicrosoft({ rotateStrict: options.rotateStrict }),
    { env: options.env, calendar: `AAMk${crypto.randomUUID().slice(0, 8)}` },
  );
  return Object.assign(fixture, { graph: fixture.fake });
}

const soon = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();
const deltaRequests = (graph: ReturnType<typeof startFakeMicrosoft>) =>
  graph.requests.filter((r) => /calendarview\/delta/i.test(r.path));

Deno.test("Graph: delta full sync, then deltaLink incremental with @removed deletions", async () => {
  await using t = await setup();
  for (let i = 0; i < 25; i++) {
    t.graph.putEvent(t.calendar, { subject: `Standup ${i}`, start: soon(i + 1), end: soon(i + 2) });
  }
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assert(deltaRequests(t.graph).length >= 1);
  assertEquals(await mirror(t.db.sql, t.id), expected(t.graph.liveEvents(t.calendar)));
  const first = deltaRequests(t.graph)[0];
  assert(first.query.startDateTime && first.query.endDateTime, "no window on the initial request");
  assert(/odata\.maxpagesize=\d+/.test(first.headers.prefer ?? ""), "no Prefer: odata.maxpagesize");

  const [victim, changed] = t.graph.liveEvents(t.calendar);
  t.graph.deleteEvent(t.calendar, victim.id);
  t.graph.putEvent(t.calendar, { id: changed.id, subject: "Renamed" });
  await requestSync(t.db.sql, t.id);
  t.graph.resetRequests();
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const incremental = deltaRequests(t.graph);
  assert(
    incremental.every((r) => r.query.$deltatoken || r.query.$skiptoken),
    "not a delta follow-up",
  );
  assertEquals(await mirror(t.db.sql, t.id), expected(t.graph.liveEvents(t.calendar)));
});

Deno.test("Graph: 429 with a fractional Retry-After sets backoff at least that long", async () => {
  await using t = await setup({ env: { SYNC_BACKOFF_BASE_MS: "10", SYNC_BACKOFF_MAX_MS: "20" } });
  t.graph.setFault({ kind: "status", status: 429, retryAfter: "7.5" }, { target: "api" });
  const before = Date.now();
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
  const row = await connectionRow(t.db.sql, t.id);
  assertEquals([row.last_error?.kind, row.last_error?.retry_after_ms], ["rate_limited", 7_500]);
  assert(row.backoff_until!.getTime() >= before + 7_400);
  assertEquals(
    await counterValue(t.harness.metrics, "calendar_sync_failures_total", {
      provider: "microsoft",
      reason: "rate_limited",
    }),
    1,
  );
});

Deno.test("Graph: syncStateNotFound runs a full sync at once", async () => {
  await using t = await setup();
  t.graph.putEvent(t.calendar, { subject: "A", start: soon(1), end: soon(2) });
  await t.harness.syncOnce(t.id);
  t.graph.putEvent(t.calendar, { subject: "B", start: soon(3), end: soon(4) });
  t.graph.invalidateSyncTokens(t.calendar, { code: "syncStateNotFound" });
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals(await mirror(t.db.sql, t.id), expected(t.graph.liveEvents(t.calendar)));
});

Deno.test("Graph: a rotated refresh token replaces the stored one", async () => {
  await using t = await setup({ rotateStrict: true });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const [row] = await t.db
    .sql`select a.refresh_token from external_calendar_connections c
      join calendar_accounts a on a.id = c.account_id where c.id = ${t.id}`;
  assert(row.refresh_token !== "rt-1", "the rotated refresh token was not stored");
  assert(t.graph.currentRefreshTokens().includes(row.refresh_token));
});

Deno.test("Graph: 503 without Retry-After backs off and writes nothing", async () => {
  await using t = await setup();
  t.graph.putEvent(t.calendar, { subject: "Keep", start: soon(1), end: soon(2) });
  await t.harness.syncOnce(t.id);
  const before = await mirror(t.db.sql, t.id);
  t.graph.putEvent(t.calendar, { subject: "Not yet", start: soon(5), end: soon(6) });
  t.graph.setFault({ kind: "status", status: 503 }, { target: "api" });
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
  const row = await connectionRow(t.db.sql, t.id);
  assertEquals([row.error_count, row.sync_needed, row.last_error?.kind], [
    1,
    true,
    "provider_unavailable",
  ]);
  assertEquals(await mirror(t.db.sql, t.id), before);
});
