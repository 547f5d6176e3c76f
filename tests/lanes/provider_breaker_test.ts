import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { lanesFixture, TEST_BREAKER } from "../support/lanes_fixture.ts";
import type { Sql } from "../../src/storage/client.ts";

type Health = { state: string; probe_interval_ms: number };

async function health(sql: Sql): Promise<Health | undefined> {
  const [row] = await sql<Health[]>`
    select state, probe_interval_ms from provider_health where provider = 'google'`;
  return row;
}

async function errorCounts(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql<{ id: string; error_count: number }[]>`
    select id, error_count from external_calendar_connections order by id`;
  return Object.fromEntries(rows.map((row) => [row.id, row.error_count]));
}

Deno.test("a provider answering 503 for everyone opens its breaker: error counts stop, probes are few, all recover", async () => {
  await using fixture = await lanesFixture({
    SYNC_BACKOFF_BASE_MS: "20",
    SYNC_BACKOFF_MAX_MS: "100",
  });
  const { db, google } = fixture;
  const ids = await fixture.addConnections("google", 12);
  google.setFault({ kind: "status", status: 503 }, { target: "api" });
  const events = () => google.countRequests((request) => request.path.includes("/events"));
  fixture.start({
    lanes: [{ kind: "google", size: 4 }, { kind: "microsoft", size: 2 }],
    breaker: TEST_BREAKER,
  });

  // Open, with every run that was in flight at the opening finished.
  await waitFor(async () => {
    const [leased] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from external_calendar_connections where lease_owner is not null`;
    return (await health(db.sql))?.state === "open" && leased.n === 0;
  }, { timeoutMs: 15_000, what: "the breaker open and no sync in flight" });
  const atOpening = await errorCounts(db.sql);
  const requestsAtOpening = events();

  // Two failed probes: 300 ms -> 600 ms -> 1,200 ms (the maximum).
  await waitFor(async () => {
    const row = await health(db.sql);
    return row?.state === "open" && row.probe_interval_ms === TEST_BREAKER.probeMaxMs;
  }, { timeoutMs: 15_000, what: "two failed probes" });
  assertEquals(
    await errorCounts(db.sql),
    atOpening,
    "error_count moved while the breaker was open",
  );
  const duringOutage = events() - requestsAtOpening;
  // One request per probe (two probes, a third may have just started): no herd of retries.
  assert(duringOutage >= 2 && duringOutage <= 3, `${duringOutage} requests while open`);
  assert(
    Object.values(atOpening).every((count) => count < 10),
    `error counts at the opening: ${Object.values(atOpening)}`,
  );

  google.setFault(null);
  await waitFor(async () => {
    const [row] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from external_calendar_connections
      where id = any(${ids}::uuid[]) and error_count = 0 and not sync_needed
        and last_success_at is not null`;
    return row.n === ids.length && (await health(db.sql))?.state === "closed";
  }, { timeoutMs: 20_000, what: "every connection recovered and the breaker closed" });
});
