/**
 * @module The per-provider circuit breaker as pure functions: a failure window, the verdict that
 * opens it, and the transitions between closed, half-open and open. No I/O and no clock of its
 * own (every function takes `now`), so replicas apply the same rules to the shared row.
 */

/** Breaker states; the gauge `calendar_provider_circuit_state` exports them as 0, 1 and 2. */
export type BreakerState = "closed" | "half_open" | "open";

/** The gauge value of each state (documented in the README's metrics table). */
export const BREAKER_GAUGE: Readonly<Record<BreakerState, number>> = {
  closed: 0,
  half_open: 1,
  open: 2,
};

/** The breaker's shared state (one `provider_health` row). */
export type BreakerSnapshot = {
  state: BreakerState;
  /** When `state` last changed (epoch ms). */
  changedAt: number;
  /** Open: wait before the next probe; doubles per failed probe. 0 while closed. */
  probeIntervalMs: number;
  /** Open: when the next probe may start (epoch ms); null otherwise. */
  probeAt: number | null;
};

/** Thresholds and timings (SYNC_BREAKER_*). */
export type BreakerSettings = {
  windowMs: number;
  /** Provider-wide failures as a share of requests, 0..1, at or above which the breaker opens. */
  failureRatio: number;
  /** Fewer outcomes than this in the window never open it (one unlucky request is no outage). */
  minRequests: number;
  /** Distinct failing connections needed: one broken calendar retrying is not an outage. */
  minConnections: number;
  probeIntervalMs: number;
  probeMaxMs: number;
  /** After closing, the lane's limit doubles every step, from 1 to the full lane. */
  drainStepMs: number;
};

/** What one finished sync says about its provider. */
export type Verdict = "ok" | "provider_down" | "neutral";

// 5xx, timeouts and connection errors are the provider's; a 4xx is one calendar's answer and
// proves the provider is up. Rate limits go to the quota (AIMD), database trouble is ours.
const PROVIDER_DOWN = new Set(["provider_unavailable", "timeout", "network"]);
const NEUTRAL = new Set(["rate_limited", "database", "lease_lost", "internal"]);

/** Reads a run's outcome kind ("success" or a failure kind) as evidence about its provider. */
export function verdictOf(kind: string): Verdict {
  if (PROVIDER_DOWN.has(kind)) return "provider_down";
  if (NEUTRAL.has(kind)) return "neutral";
  return "ok";
}

/** One outcome in the failure window. */
export type Outcome = { at: number; down: boolean; connectionId: string };

/** Adds an outcome and drops those older than the window; returns a new array. */
export function recordOutcome(
  window: readonly Outcome[],
  outcome: Outcome,
  windowMs: number,
): Outcome[] {
  const since = outcome.at - windowMs;
  return [...window.filter((entry) => entry.at > since), outcome];
}

/** The window's numbers, for the verdict and the transition's log line. */
export type WindowStats = { requests: number; failures: number; failingConnections: number };

/** Counts the outcomes within the window ending at `now`. */
export function windowStats(
  window: readonly Outcome[],
  now: number,
  windowMs: number,
): WindowStats {
  const recent = window.filter((entry) => entry.at > now - windowMs);
  const failing = new Set(recent.filter((entry) => entry.down).map((entry) => entry.connectionId));
  return {
    requests: recent.length,
    failures: recent.filter((entry) => entry.down).length,
    failingConnections: failing.size,
  };
}

/** True when the window shows a provider-wide outage. */
export function shouldOpen(stats: WindowStats, settings: BreakerSettings): boolean {
  return stats.requests >= settings.minRequests &&
    stats.failingConnections >= settings.minConnections &&
    stats.failures >= settings.failureRatio * stats.requests;
}

/** Events that move the breaker. */
export type BreakerEvent = "outage_detected" | "probe_started" | "probe_succeeded" | "probe_failed";

/**
 * The next state after `event`, or null when the event does not apply in this state (the caller
 * then changes nothing: another replica got there first).
 */
export function transition(
  current: BreakerSnapshot,
  event: BreakerEvent,
  now: number,
  settings: BreakerSettings,
): BreakerSnapshot | null {
  switch (event) {
    case "outage_detected":
      if (current.state !== "closed") return null;
      return opened(settings.probeIntervalMs, now);
    case "probe_started":
      if (current.state !== "open" || current.probeAt === null || current.probeAt > now) {
        return null;
      }
      return { ...current, state: "half_open", changedAt: now, probeAt: null };
    case "probe_succeeded":
      if (current.state !== "half_open") return null;
      return { state: "closed", changedAt: now, probeIntervalMs: 0, probeAt: null };
    case "probe_failed":
      if (current.state !== "half_open") return null;
      return opened(Math.min(settings.probeMaxMs, current.probeIntervalMs * 2), now);
  }
}

function opened(intervalMs: number, now: number): BreakerSnapshot {
  return { state: "open", changedAt: now, probeIntervalMs: intervalMs, probeAt: now + intervalMs };
}

/**
 * How many syncs a lane may run at once: none while open or half-open (the probe is claimed
 * apart), and after a recovery 1, 2, 4, ... per drain step up to the lane, so the backlog the
 * outage left is drained at a bounded rate instead of all at once.
 */
export function laneLimit(
  snapshot: BreakerSnapshot,
  lane: number,
  now: number,
  settings: BreakerSettings,
): number {
  if (snapshot.state !== "closed") return 0;
  const steps = Math.floor(Math.max(0, now - snapshot.changedAt) / settings.drainStepMs);
  // A breaker closed long ago (or never opened) gives the full lane without a huge power.
  if (steps >= 31) return lane;
  return Math.min(lane, 2 ** steps);
}
