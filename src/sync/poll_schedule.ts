/** @module When a completed connection is due again: jittered polls, reconciliation, push-missed; pure. */
import type { ProviderKind } from "../core/provider_kind.ts";
import type { CompletionSchedule } from "../storage/connections.ts";

/** The poll and reconciliation settings (SYNC_POLL_INTERVAL, ..._WITH_PUSH, SYNC_RECONCILE_INTERVAL). */
export type PollSettings = {
  pollIntervalMs: number;
  pollIntervalWithPushMs: number;
  reconcileIntervalMs: number;
};

/**
 * Polls come due up to this fraction early: enough that connections completed in the same second
 * (a burst of webhooks, a restart) drift apart instead of polling together for ever.
 */
export const POLL_JITTER = 0.1;

/**
 * How long after its last notification a live channel may stay silent about a change before the
 * change counts as missed: the provider's delivery latency (Google delivers within seconds, Graph
 * within 3 minutes, §4.4), capped by the short poll so compressed settings compress it too.
 */
export const PUSH_QUIET_MS: Readonly<Record<ProviderKind, number>> = {
  google: 60_000,
  microsoft: 180_000,
};

/** `intervalMs` less up to POLL_JITTER of it; `random` is in [0, 1). */
export function jitteredMs(intervalMs: number, random: number): number {
  if (!(intervalMs > 0)) {
    throw new RangeError(
      `Cannot jitter the poll as 'intervalMs' must be positive: current value is ${intervalMs}`,
    );
  }
  return Math.round(intervalMs * (1 - POLL_JITTER * random));
}

/** What a run knows when it completes. */
export type CompletionFacts = {
  provider: ProviderKind;
  /** A sync was requested (webhook, CLI) rather than only polled. */
  requested: boolean;
  /** The run was a reconciliation that ran to its end with nothing held back. */
  verified: boolean;
  /** The run compared a full listing (its changes are the whole calendar, not news). */
  reconciling: boolean;
  hasLivePush: boolean;
  lastNotificationAt: Date | null;
  /** Changes the provider reported in this run. */
  changes: number;
  now: number;
};

/**
 * True when a poll found changes that the connection's live push channel should have announced:
 * nobody requested the sync, and no notification arrived within the provider's quiet period.
 */
export function isPushMissed(facts: CompletionFacts, settings: PollSettings): boolean {
  if (facts.requested || facts.reconciling || !facts.hasLivePush || facts.changes === 0) {
    return false;
  }
  const quietMs = Math.min(PUSH_QUIET_MS[facts.provider], settings.pollIntervalMs);
  return facts.lastNotificationAt === null ||
    facts.now - facts.lastNotificationAt.getTime() > quietMs;
}

/**
 * The schedule a completion stores. A verification schedules the next one a whole interval on,
 * which keeps reconciliations where the first, random, schedule spread them.
 */
export function completionSchedule(
  facts: CompletionFacts,
  settings: PollSettings,
  random: () => number,
): CompletionSchedule {
  return {
    shortPollMs: jitteredMs(settings.pollIntervalMs, random()),
    longPollMs: jitteredMs(settings.pollIntervalWithPushMs, random()),
    verified: facts.verified,
    reconcileInMs: facts.verified
      ? settings.reconcileIntervalMs
      : Math.max(1, Math.round(settings.reconcileIntervalMs * random())),
    pushMissed: isPushMissed(facts, settings),
  };
}
