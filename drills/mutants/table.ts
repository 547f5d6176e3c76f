/** @module Judges one mutant's drill run and renders the mutation table. */
import type { CheckRecord } from "../drill/records.ts";
import type { Defect } from "./defects.ts";

/** One row of the table. */
export type MutantRow = {
  id: string;
  /** The drill's exit code; null when it did not run (pending or stale defect). */
  exitCode: number | null;
  /** `scenario/variant` of each failed check, deduplicated, in report order. */
  scenarios: string[];
  /** The diagnoses of the failed checks ("none" for a check naming no symptom). */
  diagnoses: string[];
  expected: string;
  verdict: "caught" | "MISSED" | "WRONG DIAGNOSIS" | "STALE" | "pending";
  note: string;
};

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/**
 * Judges a finished drill run: caught only when the drill failed and every failed check carries
 * the defect's one expected diagnosis (a second symptom would send an operator to working code).
 */
export function judge(defect: Defect, exitCode: number, checks: readonly CheckRecord[]): MutantRow {
  const failed = checks.filter((check) => !check.pass);
  const diagnoses = unique(failed.map((check) => check.diagnosis?.symptom ?? "none"));
  const caught = exitCode !== 0 && failed.length > 0;
  const right = diagnoses.length === 1 && diagnoses[0] === defect.expected;
  return {
    id: defect.id,
    exitCode,
    scenarios: unique(failed.map((check) => `${check.scenario}/${check.variant}`)),
    diagnoses,
    expected: defect.expected,
    verdict: !caught ? "MISSED" : right ? "caught" : "WRONG DIAGNOSIS",
    note: failed.slice(0, 3).map((c) => `${c.scenario}/${c.variant} ${c.provider}: ${c.check}`)
      .join("; "),
  };
}

/** A row for a defect that was not run: pending its feature, or stale against the source. */
export function notRun(defect: Defect, verdict: "pending" | "STALE", note: string): MutantRow {
  return {
    id: defect.id,
    exitCode: null,
    scenarios: [],
    diagnoses: [],
    expected: defect.expected,
    verdict,
    note,
  };
}

/** The table as Markdown: defect, drill exit code, failed scenarios, diagnosis, verdict. */
export function renderTable(rows: readonly MutantRow[]): string {
  const lines = [
    "| defect | drill exit | scenario that failed | diagnosis | verdict |",
    "| ------ | ---------- | -------------------- | --------- | ------- |",
  ];
  for (const row of rows) {
    const scenarios = row.scenarios.join(", ") || "-";
    const diagnosis = row.diagnoses.join(", ") || `(expected: ${row.expected})`;
    lines.push(
      `| \`${row.id}\` | ${row.exitCode ?? "-"} | ${scenarios} | ${diagnosis} | ${row.verdict} |`,
    );
  }
  return lines.join("\n");
}

/** True when every defect that ran was caught with its right diagnosis and none was stale. */
export function allCaught(rows: readonly MutantRow[]): boolean {
  return rows.every((row) => row.verdict === "caught" || row.verdict === "pending");
}
