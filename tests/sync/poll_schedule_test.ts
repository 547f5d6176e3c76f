import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  type CompletionFacts,
  completionSchedule,
  isPushMissed,
  jitteredMs,
  POLL_JITTER,
} from "../../src/sync/poll_schedule.ts";

const SETTINGS = {
  pollIntervalMs: 15 * 60_000,
  pollIntervalWithPushMs: 6 * 3_600_000,
  reconcileIntervalMs: 86_400_000,
};
const NOW = Date.parse("2026-03-01T12:00:00Z");

function facts(overrides: Partial<CompletionFacts> = {}): CompletionFacts {
  return {
    provider: "google",
    requested: false,
    verified: false,
    reconciling: false,
    hasLivePush: true,
    lastNotificationAt: new Date(NOW - 3_600_000),
    changes: 2,
    now: NOW,
    ...overrides,
  };
}

Deno.test("jitteredMs() stays within the last POLL_JITTER of the interval", () => {
  assertEquals(jitteredMs(1_000_000, 0), 1_000_000);
  assertEquals(
    jitteredMs(1_000_000, 0.999_999),
    Math.round(1_000_000 * (1 - POLL_JITTER * 0.999_999)),
  );
  for (let i = 0; i < 100; i++) {
    const ms = jitteredMs(900_000, Math.random());
    assert(ms <= 900_000 && ms >= 900_000 * (1 - POLL_JITTER), `${ms}`);
  }
  assertThrows(() => jitteredMs(0, 0.5), RangeError, "'intervalMs' must be positive");
});

Deno.test("jittered polls of connections completed together spread over a window", () => {
  const values = new Set(Array.from({ length: 50 }, (_, i) => jitteredMs(900_000, i / 50)));
  assertEquals(values.size, 50);
});

Deno.test("a poll that finds changes no notification announced is a missed push", () => {
  assertEquals(isPushMissed(facts(), SETTINGS), true);
  assertEquals(isPushMissed(facts({ lastNotificationAt: null }), SETTINGS), true);
});

Deno.test("no missed push when the sync was requested, found nothing, reconciled, or has no channel", () => {
  assertEquals(isPushMissed(facts({ requested: true }), SETTINGS), false);
  assertEquals(isPushMissed(facts({ changes: 0 }), SETTINGS), false);
  assertEquals(isPushMissed(facts({ reconciling: true }), SETTINGS), false);
  assertEquals(isPushMissed(facts({ hasLivePush: false }), SETTINGS), false);
});

Deno.test("a notification within the provider's quiet period may still be about the change", () => {
  assertEquals(
    isPushMissed(facts({ lastNotificationAt: new Date(NOW - 30_000) }), SETTINGS),
    false,
  );
  // Graph delivers within 3 minutes: 2 minutes of silence is not yet a miss for Microsoft.
  const twoMinutes = new Date(NOW - 120_000);
  assertEquals(isPushMissed(facts({ lastNotificationAt: twoMinutes }), SETTINGS), true);
  assertEquals(
    isPushMissed(facts({ provider: "microsoft", lastNotificationAt: twoMinutes }), SETTINGS),
    false,
  );
});

Deno.test("the quiet period shrinks with a compressed poll interval", () => {
  const compressed = { ...SETTINGS, pollIntervalMs: 2_000 };
  const fiveSeconds = new Date(NOW - 5_000);
  assertEquals(isPushMissed(facts({ lastNotificationAt: fiveSeconds }), compressed), true);
});

Deno.test("a verified reconciliation schedules the next one a whole interval on", () => {
  const schedule = completionSchedule(
    facts({ verified: true, reconciling: true }),
    SETTINGS,
    () => 0.5,
  );
  assertEquals(schedule.verified, true);
  assertEquals(schedule.reconcileInMs, SETTINGS.reconcileIntervalMs);
  assertEquals(schedule.pushMissed, false);
  assertEquals(schedule.shortPollMs, jitteredMs(SETTINGS.pollIntervalMs, 0.5));
  assertEquals(schedule.longPollMs, jitteredMs(SETTINGS.pollIntervalWithPushMs, 0.5));
});

Deno.test("a first reconciliation lands at random within the interval, spreading connections", () => {
  const early = completionSchedule(facts(), SETTINGS, () => 0.1);
  const late = completionSchedule(facts(), SETTINGS, () => 0.9);
  assertEquals(early.reconcileInMs, SETTINGS.reconcileIntervalMs * 0.1);
  assertEquals(late.reconcileInMs, Math.round(SETTINGS.reconcileIntervalMs * 0.9));
  assertEquals(completionSchedule(facts(), SETTINGS, () => 0).reconcileInMs, 1);
});
