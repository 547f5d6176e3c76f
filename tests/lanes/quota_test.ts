import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { lanesFixture, TEST_BREAKER } from "../support/lanes_fixture.ts";
import { createProviderGate } from "../../src/lanes/provider_gate.ts";
import { ensureProviderHealth } from "../../src/storage/provider_health.ts";
import { QUOTA_SHAPE } from "../../src/lanes/token_bucket.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";

Deno.test("one connection's userRateLimitExceeded slows the provider's shared bucket for all", async () => {
  await using fixture = await lanesFixture();
  const { db, google } = fixture;
  const ids = await fixture.addConnections("google", 4);
  google.setFault({ kind: "status", status: 403, reason: "userRateLimitExceeded" }, {
    target: "api",
    calendar: "google-0",
    times: 1,
  });
  fixture.start({
    lanes: [{ kind: "google", size: 2 }, { kind: "microsoft", size: 1 }],
    breaker: TEST_BREAKER,
    quotaPerMinute: 60_000,
  });
  const slowed = await waitFor(async () => {
    const [row] = await db.sql<{ quota_per_minute: number | null }[]>`
      select quota_per_minute from provider_health where provider = 'google'`;
    return row?.quota_per_minute ?? null;
  }, { what: "the shared rate slowed" });
  assert(slowed <= 30_001 && slowed >= 29_000, `rate ${slowed}`);
  await waitFor(async () => {
    const [row] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from external_calendar_connections
      where id = any(${ids.slice(1)}::uuid[]) and last_success_at is not null`;
    return row.n === 3;
  }, { what: "the other connections synced under the slowed quota" });
  const [limited] = await db.sql<{ kind: string }[]>`
    select last_error->>'kind' as kind from external_calendar_connections where id = ${ids[0]}`;
  assertEquals(limited.kind, "rate_limited");
});

Deno.test("the gate claims no more than the tokens it was granted, and spent requests are owed", async () => {
  await using db = await createMigratedDatabase("gate_quota");
  const gate = createProviderGate({
    sql: db.sql,
    metrics: createMetrics(),
    owner: "t",
    kinds: ["google"],
    breaker: TEST_BREAKER,
    quota: { google: { perMinute: 60, ...QUOTA_SHAPE } },
    probeLeaseMs: 30_000,
  });
  // A bucket holding 3 tokens, refilled 1 per second.
  await ensureProviderHealth(db.sql, ["google"]);
  await db.sql`update provider_health set quota_tokens = 3, quota_refilled_at = now()`;
  const first = await gate.admit("google", { running: 0, size: 16 });
  assert(first.limit >= 3 && first.limit <= 4, `limit ${first.limit}`);
  assert(first.retryInMs !== null, "a short bucket asks to be retried later");
  gate.spend("google", first.limit + 10);
  const owed = await gate.admit("google", { running: 0, size: 16 });
  assertEquals(owed.limit, 0, "claimed while the replica owes tokens");
});
