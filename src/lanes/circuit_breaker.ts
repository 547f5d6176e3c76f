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

/**
 * The recent outcomes, counted per slot of time (a replica may finish thousands of syncs a
 * second, so outcomes are never kept one by one), and the failing connections by their last
 * failure, oldest first. Recording and pruning are amortised O(1). Mutated in place.
 */
export type FailureWindow = {
  slotMs: number;
  slots: Map<number, { requests: number; failures: number }>;
  failing: Map<string, number>;
};

/** An empty window counting in slots of `slotMs`. */
export function createWindow(slotMs = 1_000): FailureWindow {
  return { slotMs, slots: new Map(), failing: new Map() };
}

/** Counts one outcome and forgets what left the window. */
export function recordOutcome(window: FailureWindow, outcome: Outcome, windowMs: number): void {
  const key = Math.floor(outcome.at / window.slotMs);
  const slot = window.slots.get(key) ?? { requests: 0, failures: 0 };
  slot.requests++;
  if (outcome.down) {
    slot.failures++;
    // Re-inserted so the map stays ordered by last failure.
    window.failing.delete(outcome.connectionId);
    window.failing.set(outcome.connectionId, outcome.at);
  }
  window.slots.set(key, slot);
  prune(window, outcome.at, windowMs);
}

function prune(window: FailureWindow, now: number, windowMs: number) {
  const oldestSlot = Math.floor((now - windowMs) / window.slotMs);
  for (const key of window.slots.keys()) {
    if (key > oldestSlot) break;
    window.slots.delete(key);
  }
  for (const [id, at] of window.failing) {
    if (at > now - windowMs) break;
    window.failing.delete(id);
  }
}

/** The window's numbers, for the verdict and the transition's log line. */
export type WindowStats = { requests: number; failures: number; failingConnections: number };

/** Counts the outcomes within the window ending at `now` (to the slot). */
export function windowStats(window: FailureWindow, now: number, windowMs: number): WindowStats {
  prune(window, now, windowMs);
  let requests = 0;
  let failures = 0;
  for (const slot of window.slots.values()) {
    requests += slot.requests;
    failures += slot.failures;
  }
  return { requests, failures, failingConnections: window.failing.size };
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
