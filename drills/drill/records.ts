/** @module What a scenario run reports: its checks and the verification query's rows. */
import type { Sql } from "../../src/storage/client.ts";
import type { CheckOutcome } from "./diagnosis.ts";
import type { ProviderKind, ScenarioName } from "./evidence.ts";
import { type VerificationRow, verificationRows } from "./snapshot.ts";
import type { Timeline, TimelineEvent } from "./timeline.ts";

/** During the fault, or after it was removed. */
export type Phase = "outage" | "recovery";

/** One check as reported. */
export type CheckRecord = CheckOutcome & {
  scenario: ScenarioName;
  /** Which form of the fault, e.g. `503`, `429`, `cut`, `mid-write`, `pool`. */
  variant: string;
  provider: ProviderKind;
  phase: Phase;
  check: string;
};

/** The verification query's rows at one moment of one scenario. */
export type VerificationRecord = {
  scenario: ScenarioName;
  variant: string;
  provider: ProviderKind;
  phase: Phase;
  providerId: string;
  rows: VerificationRow[];
};

/** Everything one scenario run reports. */
export type ScenarioResult = {
  checks: CheckRecord[];
  verification: VerificationRecord[];
  notes: string[];
  /** What happened when, for the HTML report's timelines. */
  timelines: Timeline[];
};

/** Collects the checks and verification rows of one scenario, variant and provider. */
export type Recorder = {
  check(phase: Phase, name: string, outcome: CheckOutcome): void;
  verify(phase: Phase, sql: Sql, providerId: string): Promise<void>;
  note(text: string): void;
  /** Adds events to this scenario, variant and provider's timeline. */
  timeline(events: readonly TimelineEvent[]): void;
  readonly result: ScenarioResult;
};

/** Creates a recorder writing into `result` (a fresh one unless given). */
export function createRecorder(
  where: { scenario: ScenarioName; variant: string; provider: ProviderKind },
  result: ScenarioResult = emptyResult(),
): Recorder {
  return {
    result,
    check(phase, name, outcome) {
      result.checks.push({ ...where, phase, check: name, ...outcome });
    },
    async verify(phase, sql, providerId) {
      const rows = await verificationRows(sql, providerId);
      result.verification.push({ ...where, phase, providerId, rows });
    },
    note(text) {
      result.notes.push(text);
    },
    timeline(events) {
      let line = result.timelines.find((t) =>
        t.scenario === where.scenario && t.variant === where.variant &&
        t.provider === where.provider
      );
      if (!line) {
        line = { ...where, events: [] };
        result.timelines.push(line);
      }
      line.events.push(...events);
    },
  };
}

/** A result with nothing in it yet. */
export function emptyResult(): ScenarioResult {
  return { checks: [], verification: [], notes: [], timelines: [] };
}

/** Concatenates results, in order. */
export function mergeResults(results: readonly ScenarioResult[]): ScenarioResult {
  return {
    checks: results.flatMap((r) => r.checks),
    verification: results.flatMap((r) => r.verification),
    notes: results.flatMap((r) => r.notes),
    timelines: results.flatMap((r) => r.timelines),
  };
}
