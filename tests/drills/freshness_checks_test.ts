import {
  checkCalendarUnavailable,
  checkDeletionsHeld,
  checkDriftCounted,
  checkDriftRepaired,
  checkNoFurtherRequests,
  checkPollCaughtChange,
  checkPushMissedCounted,
  checkReleasedAndSynced,
  checkRowsKept,
  checkTerminalReported,
  type DriftEvidence,
  type GuardEvidence,
  type PollEvidence,
  type UnavailableEvidence,
} from "../../drills/drill/checks_freshness.ts";
import { assertEquals } from "../support/assert.ts";

const POLL: PollEvidence = {
  mirroredAfterMs: 2_500,
  pollIntervalMs: 3_000,
  slackMs: 4_000,
  notifications: 0,
  pushMissedBefore: 0,
  pushMissedAfter: 1,
};

Deno.test("the poll check fails when the change came late, never, or went uncounted", () => {
  assertEquals(checkPollCaughtChange(POLL).pass, true);
  assertEquals(checkPollCaughtChange({ ...POLL, mirroredAfterMs: 7_001 }).pass, false);
  assertEquals(checkPollCaughtChange({ ...POLL, mirroredAfterMs: null }).pass, false);
  assertEquals(checkPushMissedCounted(POLL).pass, true);
  assertEquals(checkPushMissedCounted({ ...POLL, pushMissedAfter: 0 }).pass, false);
});

const GONE: UnavailableEvidence = {
  status: "calendar_unavailable",
  lastError: { kind: "calendar_unavailable", status: 404 },
  errorLogged: true,
  terminalBefore: 0,
  terminalAfter: 1,
  rowsBefore: 3,
  rowsAfter: 3,
  requestsAfter: 0,
  quietMs: 6_000,
};

Deno.test("a deleted calendar that keeps being polled, or loses its rows, fails its checks", () => {
  assertEquals(checkCalendarUnavailable(GONE).pass, true);
  assertEquals(checkCalendarUnavailable({ ...GONE, status: "active" }).pass, false);
  assertEquals(checkTerminalReported({ ...GONE, errorLogged: false }).pass, false);
  assertEquals(checkTerminalReported({ ...GONE, terminalAfter: 0 }).pass, false);
  assertEquals(checkNoFurtherRequests(GONE).pass, true);
  assertEquals(checkNoFurtherRequests({ ...GONE, requestsAfter: 2 }).pass, false);
  assertEquals(checkRowsKept(GONE).pass, true);
  assertEquals(checkRowsKept({ ...GONE, rowsAfter: 0 }).pass, false);
});

const HELD: GuardEvidence = {
  status: "deletions_held",
  held: 3,
  rowsBefore: 3,
  rowsWhileHeld: 3,
  heldMetricBefore: 0,
  heldMetricAfter: 3,
  releaseCode: 0,
  statusAfterRelease: "active",
  mirrorAfterRelease: ["a|A|1", "b|B|1"],
  providerAfterRelease: ["a|A|1", "b|B|1"],
};

Deno.test("a guard that deleted anyway, or a release that did not resume, fails", () => {
  assertEquals(checkDeletionsHeld(HELD).pass, true);
  assertEquals(checkDeletionsHeld({ ...HELD, rowsWhileHeld: 0 }).pass, false);
  assertEquals(checkDeletionsHeld({ ...HELD, status: "active", held: 0 }).pass, false);
  assertEquals(checkReleasedAndSynced(HELD).pass, true);
  assertEquals(checkReleasedAndSynced({ ...HELD, releaseCode: 1 }).pass, false);
  assertEquals(checkReleasedAndSynced({ ...HELD, mirrorAfterRelease: ["a|A|1"] }).pass, false);
});

const REPAIRED: DriftEvidence = {
  repairsBefore: { missing: 0, extra: 0, changed: 0 },
  repairsAfter: { missing: 1, extra: 1, changed: 1 },
  verifiedBefore: new Date("2026-12-02T10:00:00Z"),
  verifiedAfter: new Date("2026-12-02T10:00:06Z"),
  mirror: ["a|A|1"],
  provider: ["a|A|1"],
};

Deno.test("drift that went uncounted in any kind, or stayed, fails its checks", () => {
  assertEquals(checkDriftCounted(REPAIRED).pass, true);
  assertEquals(
    checkDriftCounted({ ...REPAIRED, repairsAfter: { missing: 1, extra: 0, changed: 1 } }).pass,
    false,
  );
  assertEquals(checkDriftRepaired(REPAIRED).pass, true);
  assertEquals(checkDriftRepaired({ ...REPAIRED, mirror: [] }).pass, false);
  assertEquals(
    checkDriftRepaired({ ...REPAIRED, verifiedAfter: REPAIRED.verifiedBefore }).pass,
    false,
  );
});
