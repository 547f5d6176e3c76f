import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { startFaultProxy } from "../../testkit/fault_proxy.ts";
import { openSql, type Sql } from "../../src/storage/client.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { feedBounds, readChanges } from "../../src/storage/change_feed.ts";
import { replayChanges } from "../../src/feed/replay.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { createHarness, providerFixture } from "../support/sync_harness.ts";
import { kitFixture } from "../support/provider_kits.ts";
import { allChanges, mirrorAsFeed } from "../support/feed_view.ts";

Deno.test("a first sync appends one event.created per occurrence and connection.first_synced, numbered from 1", async () => {
  await using fixture = await providerFixture("google", () => startFakeGoogle());
  const { db, fake, harness, id, calendar } = fixture;
  for (let i = 0; i < 5; i++) fake.putEvent(calendar, { summary: `e${i}` });
  assertEquals((await harness.syncOnce(id))?.outcome, "success");
  const changes = await allChanges(db.sql);
  assertEquals(changes.map((c) => c.seq), [1, 2, 3, 4, 5, 6]);
  assertEquals(changes.filter((c) => c.type === "event.created").length, 5);
  assertEquals(changes.filter((c) => c.type === "connection.first_synced").length, 1);
  const [{ account_id: account }] = await db.sql<{ account_id: string }[]>`
    select account_id from external_calendar_connections where id = ${id}`;
  assert(account !== null, "the connection belongs to an account");
  assert(changes.every((c) => c.connection_id === id && c.account_id === account));
  assertEquals((await feedBounds(db.sql)).head, 6);
  const replayed = new Map();
  replayChanges(replayed, changes, 0);
  assertEquals(replayed, await mirrorAsFeed(db.sql));

  await db.sql`delete from external_calendar_connections where id = ${id}`;
  const removal = await allChanges(db.sql, 6);
  assertEquals(removal.map((c) => c.type), [
    "connection.removed",
    ...Array(5).fill("event.deleted"),
  ]);
  // Gone by commit, the connection's account still reaches its last changes.
  assert(removal.every((c) => c.account_id === account), JSON.stringify(removal));
  assertEquals((await readChanges(db.sql, 0, 100, { accountId: account })).length, 12);
  replayChanges(replayed, removal, 6);
  assertEquals(replayed.size, 0);
});

for (const kind of ["google", "microsoft"] as const) {
  Deno.test(`${kind}: an unchanged full re-sync appends nothing; an edit and a delete append one each`, async () => {
    await using fixture = await kitFixture(kind);
    const { db, harness, id } = fixture;
    const ids = [fixture.put("a"), fixture.put("b"), fixture.put("c")];
    assertEquals((await harness.syncOnce(id))?.outcome, "success");
    const head = (await feedBounds(db.sql)).head;
    assertEquals(head, 4);
    await requestSync(db.sql, id, { full: true });
    assertEquals((await harness.syncOnce(id))?.outcome, "success");
    assertEquals((await feedBounds(db.sql)).head, head, "an unchanged re-sync appended changes");

    fixture.put("b renamed", ids[1]);
    fixture.remove(ids[2]);
    await requestSync(db.sql, id);
    assertEquals((await harness.syncOnce(id))?.outcome, "success");
    const later = await allChanges(db.sql, head);
    assertEquals(
      later.map((c) => [c.type, c.external_event_id]).sort(),
      [["event.deleted", ids[2]], ["event.updated", ids[1]]].sort(),
    );
    assertEquals(later.find((c) => c.type === "event.updated")?.data?.title, "b renamed");
    const replayed = new Map();
    replayChanges(replayed, await allChanges(db.sql), 0);
    assertEquals(replayed, await mirrorAsFeed(db.sql));
  });
}

Deno.test("a sync cut after its upsert ran on the server, before COMMIT, leaves no change rows and no used numbers", async () => {
  await using db = await createMigratedDatabase("feed_cut");
  await using google = startFakeGoogle();
  google.addRefreshToken("rt");
  const target = new URL(db.url);
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  const applicationName = `feed_cut_${crypto.randomUUID().slice(0, 8)}`;
  const viaProxy = openSql(proxy.url(db.url), { max: 2, applicationName });
  try {
    const env = { GOOGLE_API_BASE_URL: google.baseUrl, GOOGLE_TOKEN_URL: google.tokenUrl };
    const harness = createHarness(viaProxy, env);
    const id = await harness.addConnection({
      kind: "google",
      calendar: "primary",
      refreshToken: "rt",
    });
    google.putEvent("primary", { summary: "first" });
    assertEquals((await harness.syncOnce(id))?.outcome, "success");
    const before = await allChanges(db.sql);

    const marker = `CUT-${crypto.randomUUID()}`;
    for (let i = 0; i < 3; i++) google.putEvent("primary", { summary: `${marker}-${i}` });
    await requestSync(db.sql, id);
    // The upsert (and so its trigger's change rows) runs; the client never hears back.
    const cut = proxy.cutWhen(marker, { after: "reply" });
    const outcome = await harness.syncOnce(id);
    await cut;
    assertEquals(outcome?.outcome, "failure");
    await waitFor(async () => (await openTransactions(db.sql, applicationName)) === 0, {
      what: "the cut transaction to end",
    });
    assertEquals(await allChanges(db.sql), before, "change rows of a rolled-back sync");
    assertEquals((await feedBounds(db.sql)).head, before.length);

    // The next sync writes them, continuing the numbers without a hole.
    await db.sql`update external_calendar_connections
      set due_at = now(), lease_owner = null, lease_expires_at = null where id = ${id}`;
    const repair = createHarness(db.sql, env);
    assertEquals((await repair.syncOnce(id))?.outcome, "success");
    const after = await allChanges(db.sql);
    assertEquals(after.map((c) => c.seq), after.map((_, i) => i + 1));
    assertEquals(after.length, before.length + 3);
  } finally {
    await viaProxy.end({ timeout: 1 });
    await proxy.close();
  }
});

async function openTransactions(sql: Sql, applicationName: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where application_name = ${applicationName} and xact_start is not null`;
  return row.n;
}

Deno.test("a transaction that appended first but commits last gets the later number: a reader at the head never skips it", async () => {
  await using db = await createMigratedDatabase("feed_order");
  const [provider] = await db.sql<{ id: string }[]>`
    insert into calendar_providers (kind, name) values ('google', 'g') returning id`;
  const [connection] = await db.sql<{ id: string }[]>`
    insert into external_calendar_connections (provider_id, external_calendar_id, refresh_token)
    values (${provider.id}, 'c', 'rt') returning id`;
  const insert = (sql: Sql, id: string) =>
    sql`insert into external_calendar_events (connection_id, external_event_id, status, raw)
      values (${connection.id}, ${id}, 'confirmed', '{}'::jsonb)`;
  const appended = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  // The slow transaction appends its change first and commits after the fast one.
  const slow = db.sql.begin(async (tx) => {
    await insert(tx as unknown as Sql, "slow");
    appended.resolve();
    await release.promise;
  });
  await appended.promise;
  await insert(db.sql, "fast");
  const first = await readChanges(db.sql, 0, 10);
  assertEquals(first.map((c) => [c.seq, c.external_event_id]), [[1, "fast"]]);
  release.resolve();
  await slow;
  const next = await readChanges(db.sql, first[0].seq, 10);
  assertEquals(next.map((c) => [c.seq, c.external_event_id]), [[2, "slow"]]);
});

Deno.test("connection state changes append connection.<state>: calendar_unavailable, back to active, reauth_required, deletions_held", async () => {
  await using t = await kitFixture("google", { SYNC_DELETE_GUARD_MIN: "1" });
  const ids = [t.put("a"), t.put("b"), t.put("c")];
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  const types = async (after: number) =>
    (await allChanges(t.db.sql, after)).filter((c) => c.type.startsWith("connection."))
      .map((c) => [c.type, c.data?.previous_status]);
  let head = (await feedBounds(t.db.sql)).head;

  t.fake.setFault(t.calendarGone(), { target: "api" });
  await requestSync(t.db.sql, t.id);
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
  t.fake.setFault(null, { target: "api" });
  await requestSync(t.db.sql, t.id, { force: true });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "success");
  assertEquals(await types(head), [
    ["connection.calendar_unavailable", "active"],
    ["connection.active", "calendar_unavailable"],
  ]);
  head = (await feedBounds(t.db.sql)).head;

  for (const id of ids) t.remove(id);
  await requestSync(t.db.sql, t.id);
  await t.harness.syncOnce(t.id);
  assertEquals(await types(head), [["connection.deletions_held", "active"]]);
  assertEquals(
    (await allChanges(t.db.sql, head)).filter((c) => c.type === "event.deleted").length,
    0,
    "held deletions appeared in the feed",
  );
  head = (await feedBounds(t.db.sql)).head;

  await t.db.sql`update external_calendar_connections set status = 'active' where id = ${t.id}`;
  const google = t.fake as ReturnType<typeof startFakeGoogle>;
  google.revokeRefreshToken("rt-1");
  google.expireAccessTokens();
  await requestSync(t.db.sql, t.id, { force: true });
  assertEquals((await t.harness.syncOnce(t.id))?.outcome, "failure");
  assertEquals(await types(head), [
    ["connection.active", "deletions_held"],
    ["connection.reauth_required", "active"],
  ]);
});
