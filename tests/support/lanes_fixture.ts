/** @module A scheduler with per-provider lanes and the provider gate, on fake providers. */
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import type { ProviderKind } from "../../src/core/provider_kind.ts";
import type { BreakerSettings } from "../../src/lanes/circuit_breaker.ts";
import { meteredFetch } from "../../src/lanes/metered_fetch.ts";
import { createProviderGate, type ProviderGate } from "../../src/lanes/provider_gate.ts";
import { QUOTA_SHAPE } from "../../src/lanes/token_bucket.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { type Scheduler, startScheduler } from "../../src/scheduler/scheduler.ts";
import { runSync } from "../../src/sync/run_sync.ts";
import { createHarness, TEST_ENV } from "./sync_harness.ts";
import { loadConfig } from "../../src/config/config.ts";
import { createSyncDeps } from "../../src/daemon/wiring.ts";

/** Breaker settings small enough for a test: a dozen connections trip it, probes every 300 ms. */
export const TEST_BREAKER: BreakerSettings = {
  windowMs: 60_000,
  failureRatio: 0.5,
  minRequests: 6,
  minConnections: 3,
  probeIntervalMs: 300,
  probeMaxMs: 1_200,
  drainStepMs: 100,
};

/** Both fakes, a database, and a way to start schedulers with lanes over them. */
export async function lanesFixture(env: Record<string, string> = {}) {
  const db = await createMigratedDatabase("lanes");
  const google = startFakeGoogle();
  const microsoft = startFakeMicrosoft();
  google.addRefreshToken("rt-g");
  microsoft.addRefreshToken("rt-m");
  const metrics = createMetrics();
  const fullEnv = {
    ...TEST_ENV,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    MICROSOFT_GRAPH_BASE_URL: microsoft.baseUrl,
    MICROSOFT_TOKEN_URL: microsoft.tokenUrl,
    ...env,
  };
  const config = loadConfig(fullEnv);
  const harness = createHarness(db.sql, fullEnv);
  const schedulers: Scheduler[] = [];

  async function addConnections(kind: ProviderKind, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const calendar = `${kind}-${i}`;
      (kind === "google" ? google : microsoft).addCalendar(calendar);
      ids.push(
        await harness.addConnection({
          kind,
          calendar,
          refreshToken: kind === "google" ? "rt-g" : "rt-m",
        }),
      );
    }
    return ids;
  }

  function start(options: {
    lanes: { kind: ProviderKind; size: number }[] | null;
    breaker?: BreakerSettings;
    quotaPerMinute?: number;
  }): { scheduler: Scheduler; gate: ProviderGate | null } {
    const gate = options.breaker
      ? createProviderGate({
        sql: db.sql,
        metrics,
        owner: `test-${schedulers.length}`,
        kinds: ["google", "microsoft"],
        breaker: options.breaker,
        quota: options.quotaPerMinute
          ? { google: { perMinute: options.quotaPerMinute, ...QUOTA_SHAPE } }
          : {},
        probeLeaseMs: 30_000,
        refreshMs: 50,
      })
      : null;
    const meter = gate
      ? (kind: ProviderKind, f: typeof fetch) => meteredFetch(gate, kind, f)
      : undefined;
    const base = createSyncDeps(config, db.sql, metrics, { meter });
    const deps = gate ? { ...base, providerGate: gate } : base;
    const scheduler = startScheduler({
      sql: db.sql,
      metrics,
      replicaId: `replica-${schedulers.length}`,
      concurrency: options.lanes?.reduce((sum, lane) => sum + lane.size, 0) ?? 4,
      lanes: options.lanes ?? undefined,
      gate: gate ?? undefined,
      pollIntervalMs: 50,
      leaseMs: 30_000,
      allowlist: null,
      dbDeadlineMs: 10_000,
      runSync: (connection, signal) => runSync(deps, connection, signal),
    });
    schedulers.push(scheduler);
    return { scheduler, gate };
  }

  return {
    db,
    google,
    microsoft,
    metrics,
    harness,
    addConnections,
    start,
    async [Symbol.asyncDispose]() {
      await Promise.all(schedulers.map((scheduler) => scheduler.stop(100)));
      await google.close();
      await microsoft.close();
      await db.close();
    },
  };
}
