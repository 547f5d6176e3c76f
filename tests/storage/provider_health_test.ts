import { assert, assertEquals } from "../support/assert.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { claimDueForProvider, insertConnection } from "../../src/storage/connections.ts";
import {
  closeBreaker,
  ensureProviderHealth,
  openBreaker,
  readProviderHealth,
  reopenBreaker,
  slowQuota,
  startProbe,
  takeQuotaTokens,
} from "../../src/storage/provider_health.ts";
import { QUOTA_SHAPE } from "../../src/lanes/token_bucket.ts";

const QUOTA = { perMinute: 600, ...QUOTA_SHAPE };
const CLAIM = { leaseMs: 30_000, ownerPrefix: "t", allowlist: null };

Deno.test("breaker transitions are compare-and-set: one replica opens, one probes, only the prober closes", async () => {
  await using db = await createMigratedDatabase("provider_health");
  await ensureProviderHealth(db.sql, ["google", "microsoft"]);
  assertEquals(await openBreaker(db.sql, "google", 0, { kind: "provider_unavailable" }), true);
  assertEquals(await openBreaker(db.sql, "google", 0, {}), false, "opened twice");
  assertEquals(await startProbe(db.sql, "google", "a", 30_000), true);
  assertEquals(await startProbe(db.sql, "google", "b", 30_000), false, "two probes at once");
  assertEquals(await closeBreaker(db.sql, "google", "b"), false, "closed by a non-prober");
  assertEquals(await reopenBreaker(db.sql, "google", "a", 60_000), true);
  assertEquals(await startProbe(db.sql, "google", "b", 30_000), false, "probed before probe_at");
  const states = await readProviderHealth(db.sql);
  assertEquals(states.map((row) => [row.provider, row.state]), [
    ["google", "open"],
    ["microsoft", "closed"],
  ]);
});

Deno.test("a probe whose replica died is taken over once its lease expires", async () => {
  await using db = await createMigratedDatabase("provider_health");
  await ensureProviderHealth(db.sql, ["google"]);
  await openBreaker(db.sql, "google", 0, {});
  assertEquals(await startProbe(db.sql, "google", "dead", 1), true);
  await db.sql`update provider_health set probe_expires_at = now() - interval '1 second'`;
  assertEquals(await startProbe(db.sql, "google", "alive", 30_000), true);
  assertEquals(await closeBreaker(db.sql, "google", "alive"), true);
});

Deno.test("the shared bucket grants at most its burst, then only what refilled", async () => {
  await using db = await createMigratedDatabase("provider_health");
  await ensureProviderHealth(db.sql, ["google"]);
  await db.sql`update provider_health set quota_refilled_at = now() - interval '1 hour'`;
  // 600/min with 10 s of burst: 100 tokens at most.
  const first = await takeQuotaTokens(db.sql, "google", 1_000, QUOTA);
  assertEquals(first.granted, 100);
  const second = await takeQuotaTokens(db.sql, "google", 1_000, QUOTA);
  assert(second.granted <= 2, `granted ${second.granted} right after emptying the bucket`);
});

Deno.test("a rate limit halves the shared rate once per burst of answers, down to the floor", async () => {
  await using db = await createMigratedDatabase("provider_health");
  await ensureProviderHealth(db.sql, ["google"]);
  assertEquals(await slowQuota(db.sql, "google", QUOTA), 300);
  assertEquals(await slowQuota(db.sql, "google", QUOTA), null, "halved twice by one burst");
  await db.sql`update provider_health set rate_limited_at = now() - interval '3 seconds'`;
  const again = await slowQuota(db.sql, "google", QUOTA);
  // 300 regained 10 % of 600 per minute for 3 s (+3), then halved.
  assert(again !== null && again > 150 && again < 153, `rate ${again}`);
  const { perMinute } = await takeQuotaTokens(db.sql, "google", 1, QUOTA);
  assert(perMinute < 155, `the bucket refills at ${perMinute}/min after the slowdown`);
});

Deno.test("the per-provider claim takes poll-due rows, skips an open provider, and lets its probe through", async () => {
  await using db = await createMigratedDatabase("provider_health");
  const google = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  const microsoft = await insertProvider(db.sql, {
    kind: "microsoft",
    name: "m",
    allowlisted: true,
  });
  const add = async (providerId: string, calendar: string) =>
    (await insertConnection(db.sql, {
      providerId,
      externalCalendarId: calendar,
      refreshToken: "rt",
      accountLabel: null,
    })).id;
  const polled = await add(google.id, "polled");
  await add(microsoft.id, "m1");
  // Due only for its poll: no sync requested, the last completion scheduled it.
  await db.sql`update external_calendar_connections set sync_needed = false,
    reconcile_due_at = now() + interval '1 day', due_at = now() - interval '1 minute'
    where id = ${polled}`;
  await ensureProviderHealth(db.sql, ["google", "microsoft"]);
  await openBreaker(db.sql, "google", 0, {});
  assertEquals(await claimDueForProvider(db.sql, { ...CLAIM, limit: 5, kind: "google" }), []);
  const others = await claimDueForProvider(db.sql, { ...CLAIM, limit: 5, kind: "microsoft" });
  assertEquals(others.map((c) => c.providerKind), ["microsoft"]);
  const probe = await claimDueForProvider(db.sql, {
    ...CLAIM,
    limit: 1,
    kind: "google",
    probe: true,
  });
  assertEquals(probe.map((c) => [c.id, c.requested]), [[polled, false]]);
});
