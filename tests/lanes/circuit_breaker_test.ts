import { assert, assertEquals } from "../support/assert.ts";
import {
  type BreakerSettings,
  type BreakerSnapshot,
  createWindow,
  type FailureWindow,
  laneLimit,
  recordOutcome,
  shouldOpen,
  transition,
  verdictOf,
  windowStats,
} from "../../src/lanes/circuit_breaker.ts";

const SETTINGS: BreakerSettings = {
  windowMs: 60_000,
  failureRatio: 0.5,
  minRequests: 10,
  minConnections: 3,
  probeIntervalMs: 10_000,
  probeMaxMs: 40_000,
  drainStepMs: 2_000,
};

const CLOSED: BreakerSnapshot = {
  state: "closed",
  changedAt: 0,
  probeIntervalMs: 0,
  probeAt: null,
};

function fill(outcomes: { down: boolean; connection: string }[], at: number): FailureWindow {
  const window = createWindow();
  for (const outcome of outcomes) {
    recordOutcome(
      window,
      { at, down: outcome.down, connectionId: outcome.connection },
      60_000,
    );
  }
  return window;
}

Deno.test("5xx, timeouts and connection errors are the provider's; a 4xx proves it is up", () => {
  assertEquals(
    ["provider_unavailable", "timeout", "network"].map(verdictOf),
    ["provider_down", "provider_down", "provider_down"],
  );
  assertEquals(["success", "provider_rejected", "calendar_unavailable"].map(verdictOf), [
    "ok",
    "ok",
    "ok",
  ]);
  assertEquals(["rate_limited", "database", "lease_lost"].map(verdictOf), [
    "neutral",
    "neutral",
    "neutral",
  ]);
});

Deno.test("a failure rate over the threshold across enough connections opens the breaker", () => {
  const outcomes = Array.from({ length: 10 }, (_, i) => ({ down: i < 6, connection: `c${i % 4}` }));
  const stats = windowStats(fill(outcomes, 1_000), 1_000, 60_000);
  assertEquals(stats, { requests: 10, failures: 6, failingConnections: 4 });
  assert(shouldOpen(stats, SETTINGS));
});

Deno.test("one broken calendar failing again and again does not open the breaker", () => {
  const outcomes = Array.from({ length: 20 }, () => ({ down: true, connection: "only" }));
  assert(!shouldOpen(windowStats(fill(outcomes, 0), 0, 60_000), SETTINGS));
});

Deno.test("too few requests never open it, whatever their failure rate", () => {
  const outcomes = Array.from({ length: 9 }, (_, i) => ({ down: true, connection: `c${i}` }));
  assert(!shouldOpen(windowStats(fill(outcomes, 0), 0, 60_000), SETTINGS));
});

Deno.test("outcomes older than the window no longer count", () => {
  const old = fill(Array.from({ length: 10 }, (_, i) => ({ down: true, connection: `c${i}` })), 0);
  recordOutcome(old, { at: 61_000, down: false, connectionId: "x" }, 60_000);
  assertEquals(windowStats(old, 61_000, 60_000), {
    requests: 1,
    failures: 0,
    failingConnections: 0,
  });
});

Deno.test("open -> half-open only once the probe time has come", () => {
  const open = transition(CLOSED, "outage_detected", 1_000, SETTINGS)!;
  assertEquals(open, { state: "open", changedAt: 1_000, probeIntervalMs: 10_000, probeAt: 11_000 });
  assertEquals(transition(open, "probe_started", 10_999, SETTINGS), null);
  assertEquals(transition(open, "probe_started", 11_000, SETTINGS)?.state, "half_open");
});

Deno.test("each failed probe doubles the interval up to the maximum", () => {
  let snapshot = transition(CLOSED, "outage_detected", 0, SETTINGS)!;
  const intervals: number[] = [];
  for (let i = 0; i < 4; i++) {
    const probing = transition(snapshot, "probe_started", snapshot.probeAt!, SETTINGS)!;
    snapshot = transition(probing, "probe_failed", snapshot.probeAt!, SETTINGS)!;
    intervals.push(snapshot.probeIntervalMs);
  }
  assertEquals(intervals, [20_000, 40_000, 40_000, 40_000]);
  assertEquals(snapshot.state, "open");
});

Deno.test("a successful probe closes the breaker; events that do not apply change nothing", () => {
  const open = transition(CLOSED, "outage_detected", 0, SETTINGS)!;
  const probing = transition(open, "probe_started", 10_000, SETTINGS)!;
  assertEquals(transition(probing, "probe_succeeded", 10_500, SETTINGS), {
    state: "closed",
    changedAt: 10_500,
    probeIntervalMs: 0,
    probeAt: null,
  });
  assertEquals(transition(open, "outage_detected", 1, SETTINGS), null);
  assertEquals(transition(CLOSED, "probe_succeeded", 1, SETTINGS), null);
  assertEquals(transition(open, "probe_failed", 1, SETTINGS), null);
});

Deno.test("after recovery the lane grows 1, 2, 4, ... per drain step up to its size", () => {
  const closed: BreakerSnapshot = { ...CLOSED, changedAt: 100_000 };
  const limits = [0, 1_999, 2_000, 4_000, 6_000, 8_000, 10_000, 1e9].map((dt) =>
    laneLimit(closed, 16, 100_000 + dt, SETTINGS)
  );
  assertEquals(limits, [1, 1, 2, 4, 8, 16, 16, 16]);
  assertEquals(laneLimit({ ...closed, state: "open" }, 16, 1e12, SETTINGS), 0);
  assertEquals(laneLimit({ ...closed, state: "half_open" }, 16, 1e12, SETTINGS), 0);
});

Deno.test("the window counts a busy replica's outcomes per slot, not one by one", () => {
  const window = createWindow();
  for (let i = 0; i < 100_000; i++) {
    recordOutcome(window, {
      at: Math.floor(i / 10),
      down: i % 4 === 0,
      connectionId: `c${i % 1_000}`,
    }, 60_000);
  }
  assertEquals(windowStats(window, 9_999, 60_000), {
    requests: 100_000,
    failures: 25_000,
    failingConnections: 250,
  });
  assert(window.slots.size <= 10, `${window.slots.size} slots`);
});
