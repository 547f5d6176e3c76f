/** @module The drill report: the document's results block filled in, and the report's JSON form. */
import type { ProviderKind, ScenarioName } from "./evidence.ts";
import type { CheckRecord, ScenarioResult, VerificationRecord } from "./records.ts";
import type { Timeline } from "./timeline.ts";

/** PASS / FAIL of a results-block line, or NOT RUN when no check of it ran. */
export type Verdict = "PASS" | "FAIL" | "NOT RUN";

/** The drill document's "Drill Results" block, filled in. */
export type ResultsBlock = {
  date: string;
  externalApiOutage: Verdict;
  databaseFailure: Verdict;
  webhookOutage: Verdict;
  recoveryTests: Verdict;
  status: Verdict;
  notes: string;
  /** The freshness scenario's lines, after the document's own. */
  droppedNotification: Verdict;
  deletedCalendar: Verdict;
  emptyListing: Verdict;
  driftRepaired: Verdict;
  /** The change feed's subscriber outage. */
  subscriberOutage: Verdict;
  /** The provider-wide outage: the breaker holds the provider off, then all connections recover. */
  providerOutage: Verdict;
};

/** A whole drill run: what ran where, every check, every verification query, the results. */
export type DrillReport = {
  startedAt: string;
  durationMs: number;
  database: string;
  providers: ProviderKind[];
  scenarios: ScenarioName[];
  webhooks: { available: boolean; note: string };
  checks: CheckRecord[];
  verification: VerificationRecord[];
  notes: string[];
  /** Per scenario run, what happened when (drawn in report.html). */
  timelines: Timeline[];
  results: ResultsBlock;
  passed: boolean;
};

function verdict(checks: readonly CheckRecord[]): Verdict {
  if (checks.length === 0) return "NOT RUN";
  return checks.every((c) => c.pass) ? "PASS" : "FAIL";
}

/** Names a check as `scenario/variant provider: check`, for notes and summaries. */
export function checkName(check: CheckRecord): string {
  return `${check.scenario}/${check.variant} ${check.provider}: ${check.check}`;
}

/** Builds the report from the merged scenario results. */
export function buildReport(input: {
  startedAt: Date;
  finishedAt: Date;
  database: string;
  providers: ProviderKind[];
  scenarios: ScenarioName[];
  webhooks: { available: boolean; note: string };
  result: ScenarioResult;
}): DrillReport {
  const { checks } = input.result;
  const outage = (scenario: ScenarioName) =>
    verdict(checks.filter((c) => c.scenario === scenario && c.phase === "outage"));
  const freshness = (variant: string) =>
    verdict(checks.filter((c) => c.scenario === "freshness" && c.variant === variant));
  const failed = checks.filter((c) => !c.pass);
  const durationMs = input.finishedAt.getTime() - input.startedAt.getTime();
  const status = checks.length === 0 ? "FAIL" : verdict(checks);
  const summary = [
    `${checks.length - failed.length}/${checks.length} checks passed`,
    `providers: ${input.providers.join(", ")}`,
    `database: ${input.database}`,
    `ran in ${(durationMs / 1000).toFixed(1)} s`,
  ];
  if (!input.webhooks.available) summary.push(input.webhooks.note);
  if (failed.length > 0) {
    const named = failed.slice(0, 5).map((c) =>
      `${checkName(c)}${c.diagnosis ? ` (${c.diagnosis.symptom})` : ""}`
    );
    summary.push(
      `failed: ${named.join("; ")}${failed.length > 5 ? `; and ${failed.length - 5} more` : ""}`,
    );
  }
  return {
    startedAt: input.startedAt.toISOString(),
    durationMs,
    database: input.database,
    providers: input.providers,
    scenarios: input.scenarios,
    webhooks: input.webhooks,
    checks,
    verification: input.result.verification,
    notes: input.result.notes,
    timelines: input.result.timelines,
    results: {
      date: input.startedAt.toISOString().slice(0, 10),
      externalApiOutage: outage("api"),
      databaseFailure: outage("database"),
      webhookOutage: outage("webhook"),
      recoveryTests: verdict(checks.filter((c) => c.phase === "recovery")),
      status,
      // The block keeps each value inside backticks, on one line.
      notes: summary.join("; ").replaceAll("`", "'").replaceAll("\n", " "),
      droppedNotification: freshness("poll"),
      deletedCalendar: freshness("unavailable"),
      emptyListing: freshness("guard"),
      driftRepaired: freshness("reconcile"),
      subscriberOutage: verdict(checks.filter((c) => c.scenario === "subscriber")),
      providerOutage: verdict(checks.filter((c) => c.scenario === "outage")),
    },
    passed: status === "PASS",
  };
}

/** The results block in the drill document's exact Markdown shape. */
export function renderResultsBlock(results: ResultsBlock): string {
  return [
    "## Drill Results",
    "",
    `**Date:** \`${results.date}\``,
    `**External API Outage:** \`${results.externalApiOutage}\``,
    `**Database Failure:** \`${results.databaseFailure}\``,
    `**Webhook Outage:** \`${results.webhookOutage}\``,
    `**Recovery Tests:** \`${results.recoveryTests}\``,
    `**Status:** \`${results.status}\``,
    `**Notes:** \`${results.notes}\``,
    `**Dropped Notification Caught By Poll:** \`${results.droppedNotification}\``,
    `**Deleted Calendar Stops Syncing:** \`${results.deletedCalendar}\``,
    `**Empty Listing Held By Guard:** \`${results.emptyListing}\``,
    `**Reconciliation Repairs Drift:** \`${results.driftRepaired}\``,
    `**Subscriber Outage Delivered In Order:** \`${results.subscriberOutage}\``,
    `**Provider-Wide Outage Held By Breaker:** \`${results.providerOutage}\``,
    "",
  ].join("\n");
}
