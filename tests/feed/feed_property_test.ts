/**
 * The change feed under concurrent syncs, two schedulers (one behind a fault proxy that cuts its
 * database connections at random moments) and a reader following with LISTEN: the reader sees
 * every change exactly once, in order, and replaying what it saw gives the mirror.
 */
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { startFaultProxy } from "../../testkit/fault_proxy.ts";
import { openSql, type Sql } from "../../src/storage/client.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { feedBounds } from "../../src/storage/change_feed.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { startScheduler } from "../../src/scheduler/scheduler.ts";
import { runSync } from "../../src/sync/run_sync.ts";
import { followChanges } from "../../src/feed/follow.ts";
import { replayChanges } from "../../src/feed/replay.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { createHarness, expected, mirror } from "../support/sync_harness.ts";
import { mirrorAsFeed } from "../support/feed_view.ts";
import { tolerateStrayEpipe } from "../support/stray_epipe.ts";

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function settled(sql: Sql): Promise<boolean> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from external_calendar_connections
    where sync_needed or lease_owner is not null`;
  return row.n === 0;
}

const SEED = Number(Deno.env.get("FEED_SEED") ?? Date.now() % 1_000_000);

Deno.test(`concurrent syncs with cut connections: a follower sees every change once, in order, and replays the mirror (seed ${SEED})`, async () => {
  const random = prng(SEED);
  using _stray = tolerateStrayEpipe();
  await using db = await createMigratedDatabase("feed_property");
  await using google = startFakeGoogle();
  google.addRefreshToken("rt");
  const target = new URL(db.url);
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  const env = {
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    SYNC_BACKOFF_BASE_MS: "20",
    SYNC_BACKOFF_MAX_MS: "100",
    DB_RETRY_BASE_MS: "20",
    DB_RETRY_MAX_MS: "100",
    SYNC_LEASE_MS: "3000",
  };
  const setup = createHarness(db.sql, env);
  const calendars = ["c0", "c1", "c2", "c3", "c4", "c5"];
  const ids: string[] = [];
  for (const calendar of calendars) {
    google.addCalendar(calendar);
    ids.push(await setup.addConnection({ kind: "google", calendar, refreshToken: "rt" }));
  }
  const pools = [openSql(db.url, { max: 4 }), openSql(proxy.url(db.url), { max: 4 })];
  const schedulers = pools.map((sql, n) => {
    const harness = createHarness(sql, env);
    return startScheduler({
      sql,
      metrics: createMetrics(),
      replicaId: `replica-${n}`,
      concurrency: 3,
      pollIntervalMs: 50,
      leaseMs: 3_000,
      allowlist: null,
      dbDeadlineMs: 5_000,
      dbRetryBaseMs: 20,
      dbRetryMaxMs: 100,
      runSync: (connection, signal) => runSync(harness.deps, connection, signal),
    });
  });
  const readerSql = openSql(db.url, { max: 2 });
  const stopReader = new AbortController();
  const seen: { seq: number; type: string; connection_id: string | null }[] = [];
  const replayed = new Map();
  let last = 0;
  let orderError: unknown = null;
  const reading = followChanges(
    readerSql,
    { after: 0, signal: stopReader.signal, limit: 37 },
    (page) => {
      try {
        last = replayChanges(replayed, page, last);
      } catch (error) {
        orderError ??= error;
      }
      seen.push(...page);
    },
  );
  try {
    const live = new Map<string, string[]>(calendars.map((c) => [c, []]));
    for (let round = 0; round < 10; round++) {
      for (const calendar of calendars) {
        const events = live.get(calendar)!;
        for (let op = Math.floor(random() * 4); op > 0; op--) {
          const roll = random();
          if (roll < 0.5 || events.length === 0) {
            events.push(google.putEvent(calendar, { summary: `r${round}-${op}` }).id);
          } else if (roll < 0.8) {
            const pick = events[Math.floor(random() * events.length)];
            google.putEvent(calendar, { id: pick, summary: `renamed r${round}` });
          } else {
            const [gone] = events.splice(Math.floor(random() * events.length), 1);
            google.deleteEvent(calendar, gone);
          }
        }
      }
      for (const id of ids) if (random() < 0.7) await requestSync(db.sql, id);
      // Cut the proxied replica's connections at a random moment of the round's syncs.
      if (random() < 0.6) {
        const at = Math.floor(random() * 40);
        setTimeout(() => proxy.resetAll(), at);
      }
      await waitFor(() => settled(db.sql), { timeoutMs: 30_000, what: `round ${round} synced` });
    }
    for (const id of ids) await requestSync(db.sql, id, { force: true });
    await waitFor(() => settled(db.sql), { timeoutMs: 30_000, what: "the final syncs" });
    const { head } = await feedBounds(db.sql);
    await waitFor(() => last === head, { what: `the reader to reach ${head} (at ${last})` });
  } finally {
    stopReader.abort();
    await reading;
    await Promise.all(schedulers.map((s) => s.stop(1_000)));
    await Promise.all([...pools, readerSql].map((p) => p.end({ timeout: 1 })));
    await proxy.close();
  }
  assertEquals(orderError, null, `out of order or repeated: ${orderError}`);
  assertEquals(seen.map((c) => c.seq), seen.map((_, i) => i + 1));
  assertEquals(replayed, await mirrorAsFeed(db.sql));
  for (const [n, id] of ids.entries()) {
    assertEquals(await mirror(db.sql, id), expected(google.liveEvents(calendars[n])));
  }
  assert(proxy.stats().resets > 0, "no connection was cut");
  assertEquals(seen.filter((c) => c.type === "connection.first_synced").length, ids.length);
});
