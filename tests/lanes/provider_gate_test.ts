import { assertEquals, waitFor } from "../support/assert.ts";
import { createProviderGate, type ProviderGate } from "../../src/lanes/provider_gate.ts";
import type { BreakerSettings } from "../../src/lanes/circuit_breaker.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import type { Sql } from "../../src/storage/client.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";

const BREAKER: BreakerSettings = {
  windowMs: 60_000,
  failureRatio: 0.5,
  minRequests: 3,
  minConnections: 3,
  probeIntervalMs: 1,
  probeMaxMs: 8,
  drainStepMs: 1,
};

function gate(sql: Sql, owner: string): ProviderGate {
  return createProviderGate({
    sql,
    metrics: createMetrics(),
    owner,
    kinds: ["google"],
    breaker: BREAKER,
    quota: {},
    probeLeaseMs: 30_000,
    refreshMs: 0,
  });
}

const LANE = { running: 0, size: 4 };
const google = (id: string) => ({ id, providerKind: "google" as const });

async function breaker(sql: Sql) {
  const [row] = await sql<{ state: string; probe_interval_ms: number }[]>`
    select state, probe_interval_ms from provider_health where provider = 'google'`;
  return [row.state, row.probe_interval_ms];
}

/** Waits until `g` is granted the probe, then tells it which connection probes. */
async function probeWith(g: ProviderGate, connectionId: string) {
  await waitFor(async () => (await g.admit("google", LANE)).probe, { what: "a probe" });
  await g.claimedProbe("google", connectionId);
}

Deno.test("two replicas share one breaker: one probe at a time, failed probes grow the interval, a success closes it", async () => {
  await using db = await createMigratedDatabase("gate");
  const a = gate(db.sql, "a");
  const b = gate(db.sql, "b");
  await a.admit("google", LANE);
  await b.admit("google", LANE);
  assertEquals(await a.settle(google("c1"), "provider_unavailable"), "count");
  assertEquals(await a.settle(google("c2"), "timeout"), "count");
  assertEquals(await a.settle(google("c3"), "network"), "hold", "the opening failure counted");
  assertEquals(await breaker(db.sql), ["open", 1]);
  assertEquals(await b.settle(google("c4"), "provider_unavailable"), "hold");

  await probeWith(a, "p1");
  assertEquals((await b.admit("google", LANE)).limit, 0, "a second probe while one runs");
  assertEquals(await a.settle(google("p1"), "provider_unavailable"), "hold");
  assertEquals(await breaker(db.sql), ["open", 2]);

  // A probe that met our own database says nothing: the same interval, another probe.
  await probeWith(b, "p2");
  assertEquals(await b.settle(google("p2"), "database"), "count");
  assertEquals(await breaker(db.sql), ["open", 2]);

  await probeWith(a, "p3");
  assertEquals(await a.settle(google("p3"), "success"), "count");
  assertEquals((await breaker(db.sql))[0], "closed");
  // B saw the recovery: its failures from before the outage no longer count.
  await b.admit("google", LANE);
  assertEquals(await b.settle(google("c5"), "provider_unavailable"), "count");
  assertEquals((await breaker(db.sql))[0], "closed");
});

Deno.test("a 4xx of one calendar is evidence the provider is up, never of an outage", async () => {
  await using db = await createMigratedDatabase("gate");
  const a = gate(db.sql, "a");
  await a.admit("google", LANE);
  for (let i = 0; i < 10; i++) {
    assertEquals(await a.settle(google(`c${i}`), "provider_rejected"), "count");
  }
  assertEquals(await breaker(db.sql), ["closed", 0]);
});
