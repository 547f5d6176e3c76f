/** @module What the soak collects for its convergence checks, and what a check reports. */
import type { ReconciliationEvidence } from "./final_reconciliation.ts";
import type { LogLine, ProviderKind } from "../drill/evidence.ts";
import type { Sample } from "../../testkit/prometheus_text.ts";
import type { AuditTrail } from "./audit.ts";

/** One connection's mirror and its provider calendar, as `id|title|etag` sorted lines. */
export type MirrorEvidence = {
  connectionId: string;
  kind: ProviderKind;
  calendar: string;
  mirror: readonly string[];
  provider: readonly string[];
};

/** One daemon process and what it left behind. */
export type ProcessEvidence = {
  replica: string;
  pid: number;
  /** When the soak SIGKILLed it (ms since epoch), or null. */
  killedAt: number | null;
  /** Running when the soak stopped injecting and settled (before it was asked to stop). */
  alive: boolean;
  /** GET /healthz status at that moment, null when nothing answered. */
  health: number | null;
  /** Exit code after SIGTERM; null while running or when killed. */
  exitCode: number | null;
  /** Its JSON log lines up to the final scrape (all of them for a killed process). */
  logs: readonly LogLine[];
  /** Its /metrics at the end, or null when it was killed (its counters died with it). */
  metrics: readonly Sample[] | null;
};

/** The database clock minus the soak's clock, and how sure that is (ms). */
export type ClockOffset = { offsetMs: number; uncertaintyMs: number };

/** Everything the checks look at. */
export type ChaosEvidence = {
  mirrors: readonly MirrorEvidence[];
  audit: AuditTrail;
  clock: ClockOffset;
  processes: readonly ProcessEvidence[];
  /** Dedupe keys of change notifications the daemon acknowledged with 2xx (Google's). */
  acknowledgedKeys: readonly string[];
  /** The reconciliation of every connection after settling. */
  reconciliation: ReconciliationEvidence;
};

/** The verdict of one check; `violations` name each offending item. */
export type CheckResult = { name: string; passed: boolean; summary: string; violations: string[] };

/** Builds a result: passed when there is no violation. */
export function checkResult(name: string, summary: string, violations: string[]): CheckResult {
  return { name, passed: violations.length === 0, summary, violations };
}
