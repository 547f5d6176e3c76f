import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { countEvents, listEvents } from "../../src/storage/calendar_events.ts";
import {
  claimOne,
  connectionRow,
  counterValue,
  expected,
  mirror,
  providerFixture,
} from "../support/sync_harness.ts";

async function setup(options: { maxPageSize?: number; env?: Record<string, string> } = {}) {
  const fixture = await providerFixture(
    "google",
    () => startFakeGoogle({ maxPageSize: options.maxPageSize }),
    {
      env: options.env,
      calendar: `cal-${crypto.randomUUID().slice(0, 8)}@group.calendar.google.com`,
    },
  );
  return Object.assign(fixture, { google: fixture.fake });
}

const listRequests = (google: ReturnType<typeof startFakeGoogle>) =>
  google.requests.filter((r) => r.path.endsWith("/events") && r.method === "GET");

Deno.test("Google: a full sync mirrors the calendar, then incremental syncs apply changes and deletions", async () => {
  await using t = await setup();
  for (let i = 0; i < 5; i++) t.google.putEvent(t.calendar, { summary: `Meeting ${i}` });
  t.google.putEvent(t.calendar, {
    summary: "All hands",
    start: { date: "2026-12-01" },
    end: { date: "2026-12-02" },
  });
  const first = await t.harness.syncOnce(t.id);
  assertEquals(first?.outcome, "success");
  assertEquals(await mirror(t.db.sql, t.id), expected(t.google.liveEvents(t.calendar)));
  const allDay = (await listEvents(t.db.sql, t.id)).find((e) => e.title === "All hands");
  assertEquals(allDay?.all_day, true);
  // A date, not a fake UTC midnight that shows on the wrong day west of Greenwich.
  assertEquals([allDay?.start_date, allDay?.end_date, allDay?.starts_at], [
    "2026-12-01",
    "2026-12-02",
    null,
  ]);
  const row = await connectionRow(t.db.sql, t.id);
  assertEquals([row.sync_needed, row.error_count, row.lease_owner], [false, 0, null]);
  assert(row.last_success_at !== null);

  const [victim, changed] = t.google.liveEvents(t.calendar);
  t.google.deleteEvent(t.calendar, victim.id);
  t.google.putEvent(t.calendar, { id: changed.id, summary: "Moved" });
  t.google.putEvent(t.calendar, { summary: "New one" });
  await requestSync(t.db.sql, t.id);
  const second = await t.harness.syncOnce(t.id);
  assertEquals(second?.outcome, "success");
  assertEquals(await mirror(t.db.sql, t.id), expected(t.google.liveEvents(t.calendar)));
  const last = listRequests(t.google).at(-1)!;
  assert(last.query.syncToken, "the second sync was not incremental");
  assertEquals(last.query.timeMin, undefined);
});

Deno.test("Google: paging and chunked commits store a cursor that resumes after each chunk", async () => {
  await using t = await setup({ maxPageSize: 3, env: { SYNC_CHUNK_EVENTS: "4" } });
  for (let i = 0; i < 10; i++) t.google.putEvent(t.calendar, { summary: `E${i}` });
  const outcome = await t.harness.syncOnce(t.id);
  assertEquals(outcome?.outcome, "success");
  assertEquals(listRequests(t.google).length, 4);
  assertEquals(await countEvents(t.db.sql, t.id), 10);
  assertEquals(await mirror(t.db.sql, t.id), expected(t.google.liveEvents(t.calendar)));
  // Incremental paging repeats the sync token with the page token.
  for (let i = 0; i < 7; i++) t.google.putEvent(t.calendar, { summary: `F${i}` });
  await requestSync(t.db.sql, t.id);
  t.google.resetRequests();
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const requests = listRequests(t.google);
  assert(requests.length >= 3);
  const tokens = new Set(requests.map((r) => r.query.syncToken));
  assertEquals(tokens.size, 1, "every page of one incremental sync uses the same syncToken");
  assertEquals(await mirror(t.db.sql, t.id), expected(t.google.liveEvents(t.calendar)));
});

Deno.test("Google: 410 Gone drops the token and a full resync sweeps what disappeared", async () => {
  await using t = await setup();
  for (let i = 0; i < 4; i++) t.google.putEvent(t.calendar, { summary: `E${i}` });
  await t.harness.syncOnce(t.id);
  const [gone] = t.google.liveEvents(t.calendar);
  t.google.deleteEvent(t.calendar, gone.id);
  t.google.invalidateSyncTokens(t.calendar);
  await requestSync(t.db.sql, t.id);
  const outcome = await t.harness.syncOnce(t.id);
  assertEquals(outcome?.outcome, "success");
  assertEquals(await mirror(t.db.sql, t.id), expected(t.google.liveEvents(t.calendar)));
  const statuses = listRequests(t.google).map((r) => r.status);
  assert(statuses.includes(410), `no 410 seen: ${statuses}`);
  assertEquals(
    await counterValue(t.harness.metrics, "calendar_sync_failures_total", {
      reason: "cursor_expired",
    }),
    1,
  );
});

Deno.test("Google: 503 records backoff state, writes no events, and recovery clears it", async () => {
  await using t = await setup({ env: { SYNC_BACKOFF_BASE_MS: "400", SYNC_BACKOFF_MAX_MS: "800" } });
  t.google.putEvent(t.calendar, { summary: "Before" });
  await t.harness.syncOnce(t.id);
  const before = await mirror(t.db.sql, t.id);
  t.google.putEvent(t.calendar, { summary: "During outage" });
  t.google.setFault({ kind: "status", status: 503 }, { target: "api" });
  await requestSync(t.db.sql, t.id);
  const started = Date.now();
  const failed = await t.harness.syncOnce(t.id);
  assertEquals(failed?.outcome, "failure");
  const row = await connectionRow(t.db.sql, t.id);
  assertEquals(row.error_count, 1);
  assertEquals(row.sync_needed, true);
  assertEquals(row.lease_owner, null);
  assert(
    row.backoff_until !== null && row.backoff_until.getTime() > started,
    "backoff_until not in the future",
  );
  const lastError = row.last_error!;
  assertEquals([lastError.kind, lastError.status, lastError.provider, lastError.attempt], [
    "provider_unavailable",
    503,
    "google",
    1,
  ]);
  assertStringIncludes(String(lastError.message), "503");
  assertEquals(await mirror(t.db.sql, t.id), before, "no partial state");
  assertEquals(
    await counterValue(t.harness.metrics, "calendar_sync_failures_total", {
      provider: "google",
      reason: "provider_unavailable",
    }),
    1,
  );
  // Not claimable before backoff_until: no request reaches the provider early.
  const requestsAfterFailure = t.google.countRequests();
  assertEquals(await claimOne(t.db.sql, t.id), null);
  assertEquals(t.google.countRequests(), requestsAfterFailure);

  t.google.setFault(null);
  await new Promise((resolve) =>
    setTimeout(resolve, Math.max(0, row.backoff_until!.getTime() - Date.now() + 20))
  );
  const recovered = await t.harness.syncOnce(t.id);
  assertEquals(recovered?.outcome, "success");
  const after = await connectionRow(t.db.sql, t.id);
  assertEquals([after.error_count, after.backoff_until, after.sync_needed], [0, null, false]);
  assertEquals(await mirror(t.db.sql, t.id), expected(t.google.liveEvents(t.calendar)));
});

Deno.test("Google: 403 rateLimitExceeded is a rate-limit failure with plain backoff", async () => {
  await using t = await setup();
  t.google.setFault({ kind: "status", status: 403, reason: "rateLimitExceeded" }, {
    target: "api",
  });
  await t.harness.syncOnce(t.id);
  const row = await connectionRow(t.db.sql, t.id);
  assertEquals([row.last_error?.kind, row.last_error?.status], ["rate_limited", 403]);
});

Deno.test("Google: invalid_grant marks the connection reauth_required and stops syncing it", async () => {
  await using t = await setup();
  t.google.revokeRefreshToken("rt-1");
  const outcome = await t.harness.syncOnce(t.id);
  assertEquals(outcome?.outcome, "failure");
  const row = await connectionRow(t.db.sql, t.id);
  assertEquals([row.status, row.last_error?.kind, row.last_error?.provider_code], [
    "reauth_required",
    "reauth_required",
    "invalid_grant",
  ]);
  assertEquals(await claimOne(t.db.sql, t.id), null, "a reauth_required connection was claimed");
  assertEquals(
    await counterValue(t.harness.metrics, "calendar_sync_failures_total", {
      reason: "reauth_required",
    }),
    1,
  );
});

Deno.test("Google: a hung provider times out and releases the lease", async () => {
  await using t = await setup({ env: { SYNC_HTTP_TIMEOUT_MS: "300" } });
  t.google.setFault({ kind: "hang" }, { target: "api" });
  const outcome = await t.harness.syncOnce(t.id);
  assertEquals(outcome?.outcome, "failure");
  const row = await connectionRow(t.db.sql, t.id);
  assertEquals([row.last_error?.kind, row.lease_owner], ["timeout", null]);
});

Deno.test("Google: a malformed body is a classified failure, never a crash", async () => {
  await using t = await setup();
  for (const variant of ["shape", "truncated"] as const) {
    await t.db
      .sql`update external_calendar_connections set backoff_until = null, due_at = now() where id = ${t.id}`;
    t.google.setFault({ kind: "malformed", variant }, { target: "api", times: 1 });
    assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
    assertEquals((await connectionRow(t.db.sql, t.id)).last_error?.kind, "malformed_response");
  }
});
