/**
 * @module The gate between the scheduler and a provider: how many of its connections may be
 * claimed now (breaker, drain after recovery, quota), the one probe while it is open, and what a
 * finished run says about the provider. Outcomes are counted in this replica (no write per
 * request); transitions and token batches go to `provider_health`, so replicas agree on state.
 */
import type { ProviderKind } from "../core/provider_kind.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Sql } from "../storage/client.ts";
import {
  closeBreaker,
  ensureProviderHealth,
  openBreaker,
  type ProviderHealthRow,
  type QuotaShape,
  readProviderHealth,
  reopenBreaker,
  slowQuota,
  startProbe,
  takeQuotaTokens,
} from "../storage/provider_health.ts";
import {
  BREAKER_GAUGE,
  type BreakerSettings,
  type BreakerSnapshot,
  type BreakerState,
  createWindow,
  type FailureWindow,
  laneLimit,
  recordOutcome,
  shouldOpen,
  transition,
  verdictOf,
  windowStats,
} from "./circuit_breaker.ts";

/** What a gate needs. */
export type GateDeps = {
  sql: Sql;
  metrics: Metrics;
  /** This replica's id: the probe owner. */
  owner: string;
  kinds: readonly ProviderKind[];
  breaker: BreakerSettings;
  /** Providers with a project quota (GOOGLE_QUOTA_PER_MINUTE); the others are not metered. */
  quota: Partial<Record<ProviderKind, QuotaShape>>;
  /** How long a probe may run before another replica takes it over. */
  probeLeaseMs: number;
  /** How stale the cached breaker state may be (the claim statement checks it anyway). */
  refreshMs?: number;
  now?: () => number;
};

/** How many connections of a lane may be claimed, and whether the claim is the probe. */
export type Admission = { limit: number; probe: boolean; retryInMs: number | null };

/** What a finished run means for its connection: recorded as usual, or left alone. */
export type Settlement = "count" | "hold";

/** The gate of one replica. */
export type ProviderGate = {
  admit(kind: ProviderKind, lane: { running: number; size: number }): Promise<Admission>;
  /** After the probe's claim: the connection probing, or null when none was due. */
  claimedProbe(kind: ProviderKind, connectionId: string | null): Promise<void>;
  /** A run's outcome ("success" or its failure kind); never throws. */
  settle(connection: { id: string; providerKind: ProviderKind }, kind: string): Promise<Settlement>;
  /** Counts provider requests against the quota (metered fetch). */
  spend(kind: ProviderKind, requests: number): void;
  /** A 429 or 403 rateLimitExceeded: slow the provider's bucket (AIMD). */
  rateLimited(kind: ProviderKind): void;
};

const log = logger("lanes");

type Local = {
  window: FailureWindow;
  probe: string | null | undefined;
  allowance: number;
  slowedAt: number;
};

/** Creates the gate; the table rows are created on first use. */
export function createProviderGate(deps: GateDeps): ProviderGate {
  const clock = deps.now ?? Date.now;
  const refreshMs = deps.refreshMs ?? 1_000;
  const cache = new Map<ProviderKind, ProviderHealthRow>();
  const local = new Map<ProviderKind, Local>(
    deps.kinds.map((kind) => [kind, {
      window: createWindow(),
      probe: undefined,
      allowance: 0,
      slowedAt: 0,
    }]),
  );
  let refreshedAt = -Infinity;
  let skewMs = 0;
  let ensured = false;
  const dbNow = () => clock() + skewMs;

  async function refresh(force = false) {
    if (!force && clock() - refreshedAt < refreshMs) return;
    if (!ensured) {
      await ensureProviderHealth(deps.sql, deps.kinds);
      ensured = true;
    }
    const rows = await readProviderHealth(deps.sql);
    refreshedAt = clock();
    for (const row of rows) {
      skewMs = row.read_at.getTime() - refreshedAt;
      const before = cache.get(row.provider);
      const mine = local.get(row.provider);
      // Another replica moved the breaker: failures counted before that say nothing now (a
      // replica that missed a recovery must not reopen it on the old window at once).
      if (mine && before && before.changed_at.getTime() !== row.changed_at.getTime()) {
        mine.window = createWindow();
      }
      cache.set(row.provider, row);
      deps.metrics.providerCircuitState.set({ provider: row.provider }, BREAKER_GAUGE[row.state]);
    }
  }

  function setState(kind: ProviderKind, snapshot: BreakerSnapshot, owner: string | null) {
    const row = cache.get(kind);
    if (!row) return;
    cache.set(kind, {
      ...row,
      state: snapshot.state,
      changed_at: new Date(snapshot.changedAt),
      probe_interval_ms: snapshot.probeIntervalMs,
      probe_at: snapshot.probeAt === null ? null : new Date(snapshot.probeAt),
      probe_owner: owner,
      probe_expires_at: snapshot.state === "half_open"
        ? new Date(snapshot.changedAt + deps.probeLeaseMs)
        : null,
    });
    deps.metrics.providerCircuitState.set({ provider: kind }, BREAKER_GAUGE[snapshot.state]);
  }

  function logTransition(
    kind: ProviderKind,
    from: BreakerState,
    to: BreakerSnapshot,
    fields: Record<string, unknown>,
  ) {
    const message = "Circuit breaker of provider {provider} went from {from} to {to}{probe_note}";
    const entry = {
      provider: kind,
      from,
      to: to.state,
      probe_interval_ms: to.probeIntervalMs,
      next_probe_at: to.probeAt === null ? null : new Date(to.probeAt).toISOString(),
      probe_note: to.state === "open" ? "; next probe in " + to.probeIntervalMs + " ms" : "",
      ...fields,
    };
    if (to.state === "open") log.error(message, entry);
    else log.warn(message, entry);
  }

  async function admit(kind: ProviderKind, lane: { running: number; size: number }) {
    try {
      await refresh();
    } catch (error) {
      // The claim will meet the same database; let it fail and back off there.
      log.debug("Cannot read provider health; using the cached state", { error });
    }
    const row = cache.get(kind);
    if (!row) return { limit: lane.size - lane.running, probe: false, retryInMs: null };
    const snapshot = snapshotOf(row);
    if (snapshot.state !== "closed") return await admitProbe(kind, row, snapshot);
    const now = dbNow();
    const drained = laneLimit(snapshot, lane.size, now, deps.breaker);
    let limit = Math.max(0, drained - lane.running);
    let retryInMs: number | null = drained < lane.size ? deps.breaker.drainStepMs : null;
    const quota = deps.quota[kind];
    if (quota && limit > 0) {
      const allowed = await allowance(kind, limit, lane.size, quota);
      // Asking the bucket again before a lane's worth has refilled would only add writes.
      const refillMs = Math.ceil((60_000 * lane.size) / Math.max(1, quota.perMinute));
      if (allowed < limit) retryInMs = Math.max(250, refillMs);
      limit = allowed;
    }
    return { limit, probe: false, retryInMs };
  }

  async function admitProbe(kind: ProviderKind, row: ProviderHealthRow, snapshot: BreakerSnapshot) {
    const mine = local.get(kind)!;
    const now = dbNow();
    const dueAt = snapshot.state === "open"
      ? snapshot.probeAt ?? now
      : row.probe_expires_at?.getTime() ?? now;
    // Our probe ended elsewhere (taken over after its lease) or was never settled (a database
    // failure, shutdown): its lease decides, like anyone else's.
    if (row.state !== "half_open" || row.probe_owner !== deps.owner) mine.probe = undefined;
    if (dueAt > now) {
      return { limit: 0, probe: false, retryInMs: Math.max(refreshMs, dueAt - now) };
    }
    mine.probe = undefined;
    const won = await startProbe(deps.sql, kind, deps.owner, deps.probeLeaseMs).catch(() => false);
    if (!won) {
      await refresh(true).catch(() => {});
      return { limit: 0, probe: false, retryInMs: refreshMs };
    }
    const next = transition(snapshot, "probe_started", now, deps.breaker) ??
      { ...snapshot, state: "half_open" as const, changedAt: now };
    if (snapshot.state === "open") {
      logTransition(kind, "open", next, { owner: deps.owner });
    } else {
      log.warn("Probe of provider {provider} taken over (its replica stopped)", { provider: kind });
    }
    setState(kind, next, deps.owner);
    mine.probe = null;
    return { limit: 1, probe: true, retryInMs: null };
  }

  /** Whole tokens this replica may spend now, taking a batch from the shared bucket if short. */
  async function allowance(kind: ProviderKind, limit: number, laneSize: number, quota: QuotaShape) {
    const mine = local.get(kind)!;
    if (mine.allowance < limit) {
      // A batch covers the debt (requests beyond one per sync), this claim and a lane ahead.
      const want = Math.ceil(limit - mine.allowance + laneSize);
      try {
        const taken = await takeQuotaTokens(deps.sql, kind, want, quota);
        mine.allowance += taken.granted;
        deps.metrics.providerQuotaRate.set({ provider: kind }, taken.perMinute);
      } catch (error) {
        log.debug("Cannot take quota tokens", { provider: kind, error });
      }
    }
    return Math.max(0, Math.min(limit, Math.floor(mine.allowance)));
  }

  async function claimedProbe(kind: ProviderKind, connectionId: string | null) {
    const mine = local.get(kind)!;
    if (connectionId !== null) {
      mine.probe = connectionId;
      return;
    }
    mine.probe = undefined;
    const row = cache.get(kind);
    const interval = row?.probe_interval_ms || deps.breaker.probeIntervalMs;
    // Nothing to probe with: back to open with the same interval (nothing was learnt).
    if (await reopenBreaker(deps.sql, kind, deps.owner, interval).catch(() => false)) {
      const now = dbNow();
      setState(kind, {
        state: "open",
        changedAt: now,
        probeIntervalMs: interval,
        probeAt: now + interval,
      }, null);
    }
  }

  async function settleProbe(kind: ProviderKind, verdict: string): Promise<Settlement> {
    const mine = local.get(kind)!;
    mine.probe = undefined;
    const row = cache.get(kind);
    const snapshot: BreakerSnapshot = row
      ? { ...snapshotOf(row), state: "half_open" }
      : { state: "half_open", changedAt: dbNow(), probeIntervalMs: 0, probeAt: null };
    const now = dbNow();
    if (verdict === "provider_down") {
      const next = transition(snapshot, "probe_failed", now, deps.breaker)!;
      const interval = Math.max(next.probeIntervalMs, deps.breaker.probeIntervalMs);
      if (await reopenBreaker(deps.sql, kind, deps.owner, interval)) {
        const reopened = { ...next, probeIntervalMs: interval, probeAt: now + interval };
        logTransition(kind, "half_open", reopened, { probe: "failed" });
        setState(kind, reopened, null);
      }
      return "hold";
    }
    if (verdict === "neutral") {
      // A rate limit or our own database trouble says nothing about the outage: probe again.
      const interval = Math.max(snapshot.probeIntervalMs, deps.breaker.probeIntervalMs);
      if (await reopenBreaker(deps.sql, kind, deps.owner, interval)) {
        setState(kind, {
          state: "open",
          changedAt: now,
          probeIntervalMs: interval,
          probeAt: now + interval,
        }, null);
      }
      return "count";
    }
    const next = transition(snapshot, "probe_succeeded", now, deps.breaker)!;
    if (await closeBreaker(deps.sql, kind, deps.owner)) {
      logTransition(kind, "half_open", next, {
        probe: "succeeded",
        drain_step_ms: deps.breaker.drainStepMs,
      });
      setState(kind, next, null);
      mine.window = createWindow();
    }
    return "count";
  }

  async function settle(connection: { id: string; providerKind: ProviderKind }, kind: string) {
    const provider = connection.providerKind;
    const mine = local.get(provider);
    if (!mine) return "count" as const;
    const verdict = verdictOf(kind);
    try {
      if (mine.probe === connection.id) return await settleProbe(provider, verdict);
      if (verdict === "neutral") return "count" as const;
      const now = clock();
      recordOutcome(mine.window, {
        at: now,
        down: verdict === "provider_down",
        connectionId: connection.id,
      }, deps.breaker.windowMs);
      // A failure may come just after another replica opened the breaker: look (at most once
      // per refresh interval, and only on provider-wide failures).
      if (verdict === "provider_down") await refresh();
      const row = cache.get(provider);
      if (row && row.state !== "closed") return verdict === "provider_down" ? "hold" : "count";
      if (verdict !== "provider_down") return "count" as const;
      const stats = windowStats(mine.window, now, deps.breaker.windowMs);
      if (!shouldOpen(stats, deps.breaker)) return "count" as const;
      return await openOnOutage(provider, row, stats, kind);
    } catch (error) {
      log.error("Cannot update the circuit breaker of provider {provider}", { provider, error });
      return "count" as const;
    }
  }

  async function openOnOutage(
    kind: ProviderKind,
    row: ProviderHealthRow | undefined,
    stats: ReturnType<typeof windowStats>,
    failureKind: string,
  ): Promise<Settlement> {
    const now = dbNow();
    const snapshot = row
      ? snapshotOf(row)
      : { state: "closed" as const, changedAt: now, probeIntervalMs: 0, probeAt: null };
    const next = transition(snapshot, "outage_detected", now, deps.breaker);
    if (next === null) return "hold";
    const reason = { kind: failureKind, ...stats, at: new Date(clock()).toISOString() };
    // Cached as open before the write, so runs finishing meanwhile are held, not counted.
    setState(kind, next, null);
    if (await openBreaker(deps.sql, kind, next.probeIntervalMs, reason).catch(() => false)) {
      logTransition(kind, "closed", next, { ...stats, failure_kind: failureKind });
      return "hold";
    }
    // Another replica opened it first (or it is not closed any more): follow the table.
    await refresh(true);
    return cache.get(kind)?.state === "closed" ? "count" : "hold";
  }

  function spend(kind: ProviderKind, requests: number) {
    const mine = local.get(kind);
    if (mine && deps.quota[kind]) mine.allowance -= requests;
  }

  function rateLimited(kind: ProviderKind) {
    const mine = local.get(kind);
    const quota = deps.quota[kind];
    if (!mine || !quota || clock() - mine.slowedAt < 2_000) return;
    mine.slowedAt = clock();
    slowQuota(deps.sql, kind, quota).then((perMinute) => {
      if (perMinute === null) return;
      deps.metrics.providerQuotaRate.set({ provider: kind }, perMinute);
      log.warn("Provider {provider} rate-limited us; its quota slowed to {per_minute}/min", {
        provider: kind,
        per_minute: Math.round(perMinute),
      });
    }, (error) => log.debug("Cannot slow the quota", { provider: kind, error }));
  }

  return { admit, claimedProbe, settle, spend, rateLimited };
}

function snapshotOf(row: ProviderHealthRow): BreakerSnapshot {
  return {
    state: row.state,
    changedAt: row.changed_at.getTime(),
    probeIntervalMs: row.probe_interval_ms,
    probeAt: row.probe_at?.getTime() ?? null,
  };
}
