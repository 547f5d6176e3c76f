import { assert, assertEquals, assertThrows, waitFor } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { startFaultProxy } from "../../testkit/fault_proxy.ts";
import { openSql, type Sql } from "../../src/storage/client.ts";
import { requestSync, SYNC_CHANNEL } from "../../src/storage/connections.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { startScheduler } from "../../src/scheduler/scheduler.ts";
import { runSync } from "../../src/sync/run_sync.ts";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { cutFixture } from "../support/cut_fixture.ts";
import { tolerateStrayEpipe } from "../support/stray_epipe.ts";
import {
  connectionRow,
  counterValue,
  createFetchGate,
  createHarness,
  expected,
  mirror,
  providerFixture,
} from "../support/sync_harness.ts";

Deno.test("Retry-After longer than the maximum backoff is honoured", async () => {
  await using fixture = await providerFixture("google", () => startFakeGoogle(), {
    calendar: "primary",
    env: { SYNC_BACKOFF_BASE_MS: "10", SYNC_BACKOFF_MAX_MS: "20" },
  });
  const { db, fake: google, harness, id } = fixture;
  google.setFault({ kind: "status", status: 429, retryAfter: "120" }, { target: "api" });
  const before = Date.now();
  await harness.syncOnce(id);
  const row = await connectionRow(db.sql, id);
  assertEquals(row.last_error?.kind, "rate_limited");
  assertEquals(row.last_error?.retry_after_ms, 120_000);
  assert(
    row.backoff_until!.getTime() >= before + 119_000,
    `backoff_until ${row.backoff_until?.toISOString()}`,
  );
});

Deno.test("a sync request that arrives during a sync leads to exactly one more sync", async () => {
  const gate = createFetchGate("/events");
  await using fixture = await providerFixture("google", () => startFakeGoogle(), {
    calendar: "primary",
    fetch: gate.fetch,
  });
  const { db, harness, id } = fixture;
  const held = gate.close();
  const running = harness.syncOnce(id);
  await held;
  // Two requests while the sync runs: they collapse into one follow-up sync.
  await requestSync(db.sql, id);
  await requestSync(db.sql, id);
  gate.open();
  const first = await running;
  assertEquals(first?.outcome === "success" && first.syncNeeded, true);
  const second = await harness.syncOnce(id);
  assertEquals(second?.outcome === "success" && second.syncNeeded, false);
  assertEquals(await harness.syncOnce(id), null, "a third sync was due");
});

Deno.test("the database connection cut inside the write transaction leaves no partial rows and the row unchanged", async () => {
  await using t = await cutFixture("cut_write");
  const { db, google, proxy, harness, id } = t;
  const eventsBefore = await mirror(db.sql, id);
  const rowBefore = await connectionRow(db.sql, id);

  const marker = `CUT-${crypto.randomUUID()}`;
  for (let i = 0; i < 3; i++) google.putEvent("primary", { summary: `${marker}-${i}` });
  await requestSync(db.sql, id);
  // The upsert's parameters carry the marker: cut the socket the moment they are sent.
  const cut = proxy.cutWhen(marker);
  const outcome = await harness.syncOnce(id);
  await cut;
  assertEquals(outcome?.outcome, "failure");
  assertEquals(outcome?.outcome === "failure" && outcome.kind, "database");
  assertEquals(await mirror(db.sql, id), eventsBefore, "partial rows after a cut transaction");
  const rowAfter = await connectionRow(db.sql, id);
  assertEquals(
    [rowAfter.sync_cursor, rowAfter.error_count, rowAfter.last_success_at],
    [rowBefore.sync_cursor, rowBefore.error_count, rowBefore.last_success_at],
  );
  assertEquals(
    await counterValue(harness.metrics, "calendar_sync_failures_total", { reason: "database" }),
    1,
  );
  // The next sync repairs everything.
  await db
    .sql`update external_calendar_connections set due_at = now(), lease_owner = null, lease_expires_at = null where id = ${id}`;
  assertEquals((await harness.syncOnce(id))?.outcome, "success");
  assertEquals(await mirror(db.sql, id), expected(google.liveEvents("primary")));
});

Deno.test("two schedulers on one database sync every due connection, none twice at once", async () => {
  await using db = await createMigratedDatabase("two_schedulers");
  await using google = startFakeGoogle();
  google.addRefreshToken("rt");
  const env = { GOOGLE_API_BASE_URL: google.baseUrl, GOOGLE_TOKEN_URL: google.tokenUrl };
  const setupHarness = createHarness(db.sql, env);
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    const calendar = `c${i}`;
    google.putEvent(calendar, { summary: `event of ${calendar}` });
    ids.push(await setupHarness.addConnection({ kind: "google", calendar, refreshToken: "rt" }));
  }
  const active = new Set<string>();
  let overlaps = 0;
  const runs = new Map<string, number>();
  const pools = [openSql(db.url, { max: 4 }), openSql(db.url, { max: 4 })];
  const schedulers = pools.map((sql, n) => {
    const harness = createHarness(sql, env);
    return startScheduler({
      sql,
      metrics: createMetrics(),
      replicaId: `replica-${n}`,
      concurrency: 4,
      pollIntervalMs: 50,
      leaseMs: 30_000,
      allowlist: null,
      dbDeadlineMs: 10_000,
      runSync: async (connection, signal) => {
        if (active.has(connection.id)) overlaps++;
        active.add(connection.id);
        runs.set(connection.id, (runs.get(connection.id) ?? 0) + 1);
        try {
          await new Promise((resolve) => setTimeout(resolve, 5));
          return await runSync(harness.deps, connection, signal);
        } finally {
          active.delete(connection.id);
        }
      },
    });
  });
  try {
    await waitFor(async () => {
      const [row] = await db
        .sql`select count(*)::int as n from external_calendar_connections where sync_needed`;
      return row.n === 0;
    }, { timeoutMs: 20_000, what: "every connection synced" });
  } finally {
    await Promise.all(schedulers.map((s) => s.stop(1_000)));
    await Promise.all(pools.map((p) => p.end({ timeout: 1 })));
  }
  assertEquals(overlaps, 0, "a connection was synced by two runs at once");
  assertEquals(
    ids.every((id) => runs.get(id) === 1),
    true,
    `runs per connection: ${[...runs.values()]}`,
  );
  for (const id of ids.slice(0, 5)) assertEquals((await mirror(db.sql, id)).length, 1);
});

Deno.test("the scheduler wakes on NOTIFY instead of waiting for its poll interval", async () => {
  await using fixture = await providerFixture("google", () => startFakeGoogle(), {
    calendar: "primary",
  });
  const { db, harness, id } = fixture;
  const listener = openSql(db.url, { max: 2, applicationName: "notify-test" });
  let synced = 0;
  const scheduler = startScheduler({
    sql: listener,
    metrics: createMetrics(),
    replicaId: "notify",
    concurrency: 2,
    pollIntervalMs: 60_000,
    leaseMs: 30_000,
    allowlist: null,
    dbDeadlineMs: 10_000,
    runSync: async (connection, signal) => {
      synced++;
      return await runSync(harness.deps, connection, signal);
    },
  });
  try {
    await waitFor(() => synced === 1, { what: "the first sync" });
    await waitFor(async () => (await connectionRow(db.sql, id)).sync_needed === false);
    // A NOTIFY sent before the scheduler's LISTEN is in place would be lost, not late.
    await waitFor(async () => {
      const [row] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where application_name = 'notify-test' and query ilike ${`listen%${SYNC_CHANNEL}%`}`;
      return row.n === 1;
    }, { timeoutMs: 20_000, what: "the scheduler's LISTEN" });
    await requestSync(db.sql, id);
    // Far below the 60 s poll interval, so only the NOTIFY can have woken it.
    await waitFor(() => synced === 2, { timeoutMs: 30_000, what: "a sync woken by NOTIFY" });
  } finally {
    await scheduler.stop(1_000);
    await listener.end({ timeout: 1 });
  }
});

Deno.test("stopping the scheduler cancels running syncs, releases their leases and counts no failure", async () => {
  await using fixture = await providerFixture("google", () => startFakeGoogle(), {
    calendar: "primary",
    env: { SYNC_HTTP_TIMEOUT_MS: "60000" },
  });
  const { db, fake: google, harness, id } = fixture;
  google.setFault({ kind: "hang" }, { target: "api" });
  const pool = openSql(db.url, { max: 2 });
  const scheduler = startScheduler({
    sql: pool,
    metrics: harness.metrics,
    replicaId: "stopping",
    concurrency: 1,
    pollIntervalMs: 50,
    leaseMs: 60_000,
    allowlist: null,
    dbDeadlineMs: 10_000,
    runSync: (connection, signal) => runSync(harness.deps, connection, signal),
  });
  try {
    await waitFor(() => google.countRequests((r) => r.path.endsWith("/events")) === 1, {
      what: "the sync to reach the hung provider",
    });
    assert((await connectionRow(db.sql, id)).lease_owner !== null, "no lease while syncing");
  } finally {
    await scheduler.stop(100);
    await pool.end({ timeout: 1 });
  }
  const row = await connectionRow(db.sql, id);
  assertEquals([row.lease_owner, row.error_count, row.sync_needed, row.backoff_until], [
    null,
    0,
    true,
    null,
  ]);
  assertEquals(await counterValue(harness.metrics, "calendar_sync_failures_total", {}), 0);
  assertEquals(
    await counterValue(harness.metrics, "calendar_sync_runs_total", { outcome: "cancelled" }),
    1,
  );
});

Deno.test("the scheduler survives a database outage, re-LISTENs and catches up by polling", async () => {
  using _stray = tolerateStrayEpipe();
  await using db = await createMigratedDatabase("db_outage");
  await using google = startFakeGoogle();
  google.addRefreshToken("rt");
  const target = new URL(db.url);
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  const pool = openSql(proxy.url(db.url), { max: 3, connectTimeoutMs: 500 });
  const harness = createHarness(pool, {
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
  });
  const id = await harness.addConnection({
    kind: "google",
    calendar: "primary",
    refreshToken: "rt",
  });
  const scheduler = startScheduler({
    sql: pool,
    metrics: harness.metrics,
    replicaId: "outage",
    concurrency: 2,
    // A long poll interval: only the reconnect's catch-up poll can find the request quickly.
    pollIntervalMs: 30_000,
    leaseMs: 30_000,
    allowlist: null,
    dbDeadlineMs: 2_000,
    runSync: (connection, signal) => runSync(harness.deps, connection, signal),
  });
  try {
    await waitFor(async () => (await connectionRow(db.sql, id)).last_success_at !== null, {
      what: "the first sync",
    });
    await proxy.refuseNew(true);
    proxy.resetAll();
    // Requested while the daemon is cut off: its NOTIFY is lost to this replica.
    google.putEvent("primary", { summary: "during the outage" });
    await requestSync(db.sql, id);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await proxy.refuseNew(false);
    await waitFor(async () => (await connectionRow(db.sql, id)).sync_needed === false, {
      timeoutMs: 20_000,
      what: "the sync requested during the outage",
    });
    assertEquals(await mirror(db.sql, id), expected(google.liveEvents("primary")));
    // A claim attempted during an outage fails, is counted, and the loop goes on.
    await proxy.refuseNew(true);
    proxy.resetAll();
    scheduler.wake();
    await waitFor(
      async () => await counterValue(harness.metrics, "calendar_scheduler_errors_total", {}) >= 1,
      { what: "a counted claim failure" },
    );
    await proxy.refuseNew(false);
    await requestSync(db.sql, id);
    await waitFor(async () => (await connectionRow(db.sql, id)).sync_needed === false, {
      timeoutMs: 20_000,
      what: "a sync after the second outage",
    });
  } finally {
    await scheduler.stop(1_000);
    await pool.end({ timeout: 1 });
    await proxy.close();
  }
});

Deno.test("a full-sync request made during a running sync survives it: the next sync is full", async () => {
  const gate = createFetchGate("/events");
  await using fixture = await providerFixture("google", () => startFakeGoogle(), {
    calendar: "primary",
    fetch: gate.fetch,
  });
  const { db, fake: google, harness, id } = fixture;
  google.putEvent("primary", { summary: "one" });
  assertEquals((await harness.syncOnce(id))?.outcome, "success");
  await requestSync(db.sql, id);
  const held = gate.close();
  const running = harness.syncOnce(id);
  await held;
  await requestSync(db.sql, id, { full: true });
  gate.open();
  assertEquals((await running)?.outcome, "success");
  google.resetRequests();
  assertEquals((await harness.syncOnce(id))?.outcome, "success");
  const lists = google.requests.filter((r) => r.path.endsWith("/events"));
  assertEquals(lists.length, 1);
  assertEquals(lists[0].query.syncToken, undefined, "the follow-up sync was incremental");
  // Done: the request is cleared, so the sync after that is incremental again.
  await requestSync(db.sql, id);
  google.resetRequests();
  await harness.syncOnce(id);
  assert(google.requests.find((r) => r.path.endsWith("/events"))?.query.syncToken);
});

Deno.test("a slow maintenance pass (provider calls) is neither a failure nor run twice at once", async () => {
  await using db = await createMigratedDatabase("slow_maintenance");
  const metrics = createMetrics();
  let running = 0;
  let maxRunning = 0;
  let passes = 0;
  const scheduler = startScheduler({
    sql: db.sql,
    metrics,
    replicaId: "maintenance",
    concurrency: 1,
    pollIntervalMs: 1_000,
    leaseMs: 30_000,
    allowlist: null,
    dbDeadlineMs: 50,
    runSync: () => Promise.resolve(),
    maintenance: {
      intervalMs: 5,
      run: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        // Longer than the database deadline, as a pass waiting on a slow provider would be.
        await new Promise((resolve) => setTimeout(resolve, 150));
        running--;
        passes++;
      },
    },
  });
  try {
    await waitFor(() => passes >= 3, { what: "three maintenance passes" });
  } finally {
    await scheduler.stop(1_000);
  }
  assertEquals(maxRunning, 1);
  assertEquals(
    await counterValue(metrics, "calendar_scheduler_errors_total", { operation: "maintenance" }),
    0,
  );
});

Deno.test("stopping the scheduler leaves no grace timer behind when running syncs finish within the grace", async () => {
  await using db = await createMigratedDatabase("grace_timer");
  await createHarness(db.sql, {}).addConnection({
    kind: "google",
    calendar: "primary",
    refreshToken: "rt",
  });
  const { promise: started, resolve: syncStarted } = Promise.withResolvers<void>();
  const { promise: released, resolve: releaseSync } = Promise.withResolvers<void>();
  const scheduler = startScheduler({
    sql: db.sql,
    metrics: createMetrics(),
    replicaId: "grace",
    concurrency: 1,
    pollIntervalMs: 60_000,
    leaseMs: 30_000,
    allowlist: null,
    dbDeadlineMs: 10_000,
    runSync: () => {
      syncStarted();
      return released;
    },
  });
  await started;
  const stopped = scheduler.stop(60_000);
  releaseSync();
  // The op sanitizer fails this test if the 60 s grace timer outlives stop().
  await stopped;
});

// A database that refuses every statement at once. A real client of a closed port would do too,
// but postgres.js leaves its reconnect timer running after end(), which the sanitizer flags.
function refusingSql(): Sql {
  const refused = () => {
    const refusal = Promise.reject(new Error("connection refused"));
    // Fragments nested in a statement are never awaited on their own.
    refusal.catch(() => {});
    return refusal;
  };
  return Object.assign(refused, { listen: refused }) as unknown as Sql;
}

Deno.test("the scheduler's database retries back off within dbRetryBaseMs and dbRetryMaxMs", async () => {
  const sql = refusingSql();
  const lines: string[] = [];
  await setupLogging("info", (line) => lines.push(line));
  const retries = (message: string) =>
    lines.map((line) => JSON.parse(line)).filter((line) => line.message.startsWith(message))
      .map((line) => line.retry_in_ms as number);
  const scheduler = startScheduler({
    sql,
    metrics: createMetrics(),
    replicaId: "retries",
    concurrency: 1,
    pollIntervalMs: 60_000,
    leaseMs: 30_000,
    allowlist: null,
    dbDeadlineMs: 10_000,
    dbRetryBaseMs: 6,
    dbRetryMaxMs: 9,
    runSync: () => Promise.resolve(),
  });
  try {
    await waitFor(
      () => retries("Cannot claim").length >= 4 && retries("Cannot LISTEN").length >= 4,
      { timeoutMs: 30_000, what: "four failed claims and four failed LISTENs" },
    );
  } finally {
    await scheduler.stop(1_000);
    await teardownLogging();
  }
  for (const message of ["Cannot claim", "Cannot LISTEN"]) {
    const waits = retries(message);
    // Equal jitter: the first wait is between half the base and the base.
    assert(waits[0] >= 3 && waits[0] <= 6, `${message}: first wait ${waits[0]} ms`);
    assert(waits.every((ms) => ms <= 9), `${message}: waits ${waits}`);
  }
});

Deno.test("the scheduler refuses a dbRetryBaseMs above dbRetryMaxMs", () => {
  assertThrows(
    () =>
      startScheduler({
        sql: refusingSql(),
        metrics: createMetrics(),
        replicaId: "invalid",
        concurrency: 1,
        pollIntervalMs: 60_000,
        leaseMs: 30_000,
        allowlist: null,
        dbDeadlineMs: 10_000,
        dbRetryBaseMs: 500,
        dbRetryMaxMs: 100,
        runSync: () => Promise.resolve(),
      }),
    RangeError,
    "'dbRetryBaseMs' (500) must be positive and at most 'dbRetryMaxMs' (100)",
  );
});
