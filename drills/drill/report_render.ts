/** @module Renders the drill report for the terminal and as a Markdown file. */
import { formatTable } from "../../src/cli/format.ts";
import type { Diagnosis } from "./diagnosis.ts";
import type { CheckRecord, VerificationRecord } from "./records.ts";
import { type DrillReport, renderResultsBlock } from "./report.ts";
import { VERIFICATION_QUERY } from "./snapshot.ts";

const COLUMNS = ["id", "provider_id", "error_count", "last_error", "backoff_until", "sync_needed"];

/** One line per check: `PASS|FAIL  <scenario> <provider>  <check>  (evidence: ...)`. */
export function formatCheckLine(check: CheckRecord): string {
  const where = `${check.scenario}/${check.variant} ${check.provider}`;
  const phase = check.phase === "recovery" ? "recovery: " : "";
  return `${check.pass ? "PASS" : "FAIL"}  ${where}  ${phase}${check.check}  ` +
    `(evidence: ${check.detail})`;
}

/** The document's symptoms and actions for a failed check, indented under its line. */
export function formatDiagnosis(diagnosis: Diagnosis | null): string {
  if (diagnosis === null) {
    return "      diagnosis: no failure scenario of the drill document matches; see the evidence";
  }
  return [
    `      diagnosis: ${diagnosis.symptom}`,
    `        symptoms: ${diagnosis.symptoms.join("; ")}`,
    `        actions: ${diagnosis.actions.map((a, i) => `${i + 1}. ${a}`).join(" ")}`,
  ].join("\n");
}

/** The verification query as an operator would paste it, with the provider id filled in. */
export function verificationSql(record: VerificationRecord): string {
  return VERIFICATION_QUERY.replace("<provider-id>", record.providerId);
}

function verificationTitle(record: VerificationRecord): string {
  const moment = record.phase === "outage" ? "during the fault" : "after recovery";
  return `${record.scenario}/${record.variant} ${record.provider}, ${moment}`;
}

function checkLines(checks: readonly CheckRecord[]): string[] {
  const lines: string[] = [];
  for (const check of checks) {
    lines.push(formatCheckLine(check));
    if (!check.pass) lines.push(formatDiagnosis(check.diagnosis));
  }
  return lines;
}

/** The terminal form: check lines, verification query rows, then the results block. */
export function renderText(report: DrillReport): string {
  const out = [
    `calsync outage drill: ${report.scenarios.join(", ")} on ${report.providers.join(", ")}`,
    `database ${report.database}`,
    "",
    ...checkLines(report.checks),
    "",
    "Verification query (shared/outage-drill.md):",
  ];
  for (const record of report.verification) {
    out.push("", `-- ${verificationTitle(record)}`, verificationSql(record));
    out.push(formatTable(record.rows, COLUMNS).trimEnd());
  }
  for (const note of report.notes) out.push("", `note: ${note}`);
  out.push("", renderResultsBlock(report.results));
  return out.join("\n");
}

/** The Markdown form written by `--out`. */
export function renderMarkdown(report: DrillReport): string {
  const out = [
    "# Calendar Sync Failure Drill - Outages: automated run",
    "",
    `Started ${report.startedAt}, took ${(report.durationMs / 1000).toFixed(1)} s. Database ` +
    `${report.database}; providers ${report.providers.join(", ")}; scenarios ` +
    `${report.scenarios.join(", ")}.`,
    "",
    "## Checks",
    "",
    "```",
    ...checkLines(report.checks),
    "```",
    "",
    "## Verification query",
  ];
  for (const record of report.verification) {
    out.push("", `### ${verificationTitle(record)}`, "", "```sql", verificationSql(record), "```");
    out.push("", `| ${COLUMNS.join(" | ")} |`, `|${COLUMNS.map(() => "---").join("|")}|`);
    for (const row of record.rows) {
      const cells = COLUMNS.map((column) => {
        const value = (row as Record<string, unknown>)[column];
        const text = value === null
          ? "null"
          : typeof value === "object"
          ? JSON.stringify(value)
          : String(value);
        return text.replaceAll("|", "\\|");
      });
      out.push(`| ${cells.join(" | ")} |`);
    }
  }
  if (report.notes.length > 0) {
    out.push("", "## Notes", "", ...report.notes.map((note) => `- ${note}`));
  }
  out.push("", renderResultsBlock(report.results));
  return out.join("\n");
}
