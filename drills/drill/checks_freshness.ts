/**
 * @module Checks of the freshness scenario (never silently stale): a dropped notification is
 * caught by the poll, a deleted calendar stops syncing, an empty listing is held by the guard, and
 * a reconciliation repairs planted drift. Pure: each takes the evidence the scenario collected.
 */
import { type CheckOutcome, outcome } from "./diagnosis.ts";

/** A change the provider made without notifying anyone, and when the mirror showed it. */
export type PollEvidence = {
  /** ms from the quiet change to the mirror showing it; null: it never did. */
  mirroredAfterMs: number | null;
  /** The poll interval with a live channel (SYNC_POLL_INTERVAL_WITH_PUSH). */
  pollIntervalMs: number;
  /** The drill's own allowance on top: a claim tick, one sync, the lease of a running one. */
  slackMs: number;
  /** Notification attempts the fake made for the calendar since the change. */
  notifications: number;
  pushMissedBefore: number;
  pushMissedAfter: number;
};

/** The quiet change reached the mirror within one poll interval (plus the drill's slack). */
export function checkPollCaughtChange(evidence: PollEvidence): CheckOutcome {
  const limit = evidence.pollIntervalMs + evidence.slackMs;
  const took = evidence.mirroredAfterMs;
  return outcome(
    took !== null && took <= limit,
    took === null
      ? `the change never reached the mirror (waited ${limit} ms)`
      : `mirrored ${took} ms after the change (poll interval ${evidence.pollIntervalMs} ms, ` +
        `limit ${limit} ms)`,
    "Silent Failures",
  );
}

/** Nobody told calsync: the fake delivered no notification for the change. */
export function checkNoNotification(evidence: PollEvidence): CheckOutcome {
  return outcome(
    evidence.notifications === 0,
    `${evidence.notifications} notification attempts for the quiet change`,
    null,
  );
}

/** The poll that found an unannounced change counted it as a missed push. */
export function checkPushMissedCounted(evidence: PollEvidence): CheckOutcome {
  return outcome(
    evidence.pushMissedAfter > evidence.pushMissedBefore,
    `calendar_push_missed_total ${evidence.pushMissedBefore} -> ${evidence.pushMissedAfter}`,
    "Silent Failures",
  );
}

/** A calendar deleted at the provider, and what calsync did after. */
export type UnavailableEvidence = {
  status: string | null;
  lastError: unknown;
  errorLogged: boolean;
  terminalBefore: number;
  terminalAfter: number;
  rowsBefore: number;
  rowsAfter: number;
  /** Event API requests for the calendar after the terminal state, over `quietMs`. */
  requestsAfter: number;
  quietMs: number;
};

/** The connection ended in calendar_unavailable with the provider's reason. */
export function checkCalendarUnavailable(evidence: UnavailableEvidence): CheckOutcome {
  const reason = JSON.stringify(evidence.lastError) ?? "null";
  return outcome(
    evidence.status === "calendar_unavailable" && evidence.lastError !== null,
    `status=${evidence.status} last_error=${reason.slice(0, 160)}`,
    "Silent Failures",
  );
}

/** The transition was logged at error level and counted. */
export function checkTerminalReported(evidence: UnavailableEvidence): CheckOutcome {
  return outcome(
    evidence.errorLogged && evidence.terminalAfter > evidence.terminalBefore,
    `error line ${evidence.errorLogged ? "written" : "missing"}; ` +
      `calendar_sync_terminal_transitions_total ${evidence.terminalBefore} -> ${evidence.terminalAfter}`,
    "Silent Failures",
  );
}

/** No further requests to the provider for a calendar that is gone. */
export function checkNoFurtherRequests(evidence: UnavailableEvidence): CheckOutcome {
  return outcome(
    evidence.requestsAfter === 0,
    `${evidence.requestsAfter} event requests in the ${evidence.quietMs} ms after the transition`,
    null,
  );
}

/** The mirrored rows stay, for consumers to see as stale rather than gone. */
export function checkRowsKept(evidence: { rowsBefore: number; rowsAfter: number }): CheckOutcome {
  return outcome(
    evidence.rowsAfter === evidence.rowsBefore && evidence.rowsBefore > 0,
    `${evidence.rowsBefore} rows before, ${evidence.rowsAfter} after`,
    "Partial State Written",
  );
}

/** An empty full listing for a calendar with rows, and the guard's answer. */
export type GuardEvidence = {
  status: string | null;
  held: number;
  rowsBefore: number;
  rowsWhileHeld: number;
  heldMetricBefore: number;
  heldMetricAfter: number;
  releaseCode: number | null;
  statusAfterRelease: string | null;
  mirrorAfterRelease: readonly string[];
  providerAfterRelease: readonly string[];
};

/** The guard held the deletions: status deletions_held, every row still there, the ids stored. */
export function checkDeletionsHeld(evidence: GuardEvidence): CheckOutcome {
  return outcome(
    evidence.status === "deletions_held" && evidence.held === evidence.rowsBefore &&
      evidence.rowsWhileHeld === evidence.rowsBefore && evidence.rowsBefore > 0,
    `status=${evidence.status}; ${evidence.held} deletions held; rows ${evidence.rowsBefore} -> ` +
      `${evidence.rowsWhileHeld}; calendar_sync_deletions_held_total ` +
      `${evidence.heldMetricBefore} -> ${evidence.heldMetricAfter}`,
    "Partial State Written",
  );
}

/** After `release-deletions --discard` the connection is active and matches the provider again. */
export function checkReleasedAndSynced(evidence: GuardEvidence): CheckOutcome {
  const same = evidence.mirrorAfterRelease.join("\n") === evidence.providerAfterRelease.join("\n");
  return outcome(
    evidence.releaseCode === 0 && evidence.statusAfterRelease === "active" && same,
    `release exit ${evidence.releaseCode}; status=${evidence.statusAfterRelease}; mirror ` +
      `${same ? "matches" : "differs from"} the provider (${evidence.mirrorAfterRelease.length} ` +
      `rows, provider ${evidence.providerAfterRelease.length})`,
    // Nothing held to release, or a hold that does not end, is the guard's state gone wrong.
    "Partial State Written",
  );
}

/** Drift planted behind calsync's back, and what the next reconciliation did. */
export type DriftEvidence = {
  repairsBefore: Readonly<Record<"missing" | "extra" | "changed", number>>;
  repairsAfter: Readonly<Record<"missing" | "extra" | "changed", number>>;
  verifiedBefore: Date | null;
  verifiedAfter: Date | null;
  mirror: readonly string[];
  provider: readonly string[];
};

/** Each planted kind of drift was counted in calendar_sync_drift_repairs_total. */
export function checkDriftCounted(evidence: DriftEvidence): CheckOutcome {
  const kinds = ["missing", "extra", "changed"] as const;
  const counted = kinds.filter((k) => evidence.repairsAfter[k] > evidence.repairsBefore[k]);
  return outcome(
    counted.length === kinds.length,
    kinds.map((k) => `${k} ${evidence.repairsBefore[k]} -> ${evidence.repairsAfter[k]}`).join(
      ", ",
    ),
    "Silent Failures",
  );
}

/** The reconciliation set last_verified_at and left the mirror equal to the provider. */
export function checkDriftRepaired(evidence: DriftEvidence): CheckOutcome {
  const same = evidence.mirror.join("\n") === evidence.provider.join("\n");
  const verified = evidence.verifiedAfter !== null &&
    (evidence.verifiedBefore === null ||
      evidence.verifiedAfter.getTime() > evidence.verifiedBefore.getTime());
  return outcome(
    same && verified,
    `mirror ${same ? "matches" : "differs from"} the provider; last_verified_at ` +
      `${evidence.verifiedBefore?.toISOString() ?? "null"} -> ` +
      `${evidence.verifiedAfter?.toISOString() ?? "null"}`,
    "Silent Failures",
  );
}
