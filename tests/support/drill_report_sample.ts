/** @module A small drill report with timelines, for the HTML report's and the console's tests. */
import { buildReport, type DrillReport } from "../../drills/drill/report.ts";
import { emptyResult } from "../../drills/drill/records.ts";
import { outcome } from "../../drills/drill/diagnosis.ts";

/** A report of one API outage (503 twice, backoff, recovery) and one webhook outage. */
export function sampleDrillReport(start = Date.parse("2026-12-02T10:00:00Z")): DrillReport {
  const result = emptyResult();
  const where = { scenario: "api" as const, variant: "503", provider: "google" as const };
  result.checks.push(
    {
      ...where,
      phase: "outage",
      check: "backoff_until set in the future",
      ...outcome(true, "backoff_until = +5 s", null),
    },
    {
      ...where,
      phase: "recovery",
      check: "events match the provider",
      ...outcome(false, 'mirror has <script>alert("x")</script>', "Partial State Written"),
    },
  );
  const at = (s: number) => start + s * 1000;
  result.timelines.push({
    ...where,
    events: [
      { kind: "fault", at: at(0), until: at(6), ok: false, label: "provider answers 503" },
      { kind: "request", at: at(0), ok: false, label: "provider answered 503" },
      { kind: "failure", at: at(0.1), ok: false, label: "sync failed (error_count 1)" },
      { kind: "backoff", at: at(0.1), until: at(2.5), ok: false, label: "backoff" },
      { kind: "request", at: at(2.6), ok: false, label: "provider answered 503" },
      { kind: "failure", at: at(2.7), ok: false, label: "sync failed (error_count 2)" },
      { kind: "backoff", at: at(2.7), until: at(7), ok: false, label: "backoff" },
      { kind: "request", at: at(7.1), ok: true, label: "provider answered 200" },
      { kind: "recovery", at: at(7.3), ok: true, label: "sync succeeded" },
    ],
  }, {
    scenario: "webhook",
    variant: "outage",
    provider: "microsoft",
    events: [
      { kind: "fault", at: at(0), until: at(3), ok: false, label: "endpoint answers 503" },
      { kind: "webhook", at: at(0.5), ok: false, label: "delivery attempt 1: 503" },
      { kind: "webhook", at: at(1.5), ok: false, label: "delivery attempt 2: 503" },
      { kind: "webhook", at: at(3.5), ok: true, label: "delivery attempt 3: 202" },
      { kind: "request", at: at(3.6), ok: true, label: "provider answered 200" },
      { kind: "recovery", at: at(3.8), ok: true, label: "sync succeeded" },
    ],
  });
  return buildReport({
    startedAt: new Date(start),
    finishedAt: new Date(start + 12_000),
    database: "127.0.0.1:5432/calsync_drill_sample",
    providers: ["google", "microsoft"],
    scenarios: ["api", "webhook"],
    webhooks: { available: true, note: "" },
    result,
  });
}
