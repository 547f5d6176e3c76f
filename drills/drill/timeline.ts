/**
 * @module What happened when, per scenario run: provider requests, failed syncs and their
 * backoff windows, webhook deliveries and retries, faults injected and removed, the recovery.
 * Built from the evidence the checks already judge (pure), drawn by report_html.ts.
 */
import type { ApiOutageEvidence, DeliveryAttempt, LogLine, ProviderRequest } from "./evidence.ts";
import { failedRuns, recoveryRun } from "./runs.ts";

/** The lane an event is drawn on. */
export type TimelineKind = "fault" | "request" | "failure" | "backoff" | "webhook" | "recovery";

/** One moment (or window, with `until`) of a scenario run; times are epoch ms. */
export type TimelineEvent = {
  kind: TimelineKind;
  at: number;
  until?: number;
  ok: boolean;
  label: string;
};

/** The events of one scenario, variant and provider. */
export type Timeline = {
  scenario: string;
  variant: string;
  provider: string;
  events: TimelineEvent[];
};

/** Provider API requests with their answers. */
export function requestEvents(requests: readonly ProviderRequest[]): TimelineEvent[] {
  return requests.map((r) => ({
    kind: "request",
    at: r.at,
    ok: r.status < 400,
    label: `provider answered ${r.status}`,
  }));
}

/** Webhook delivery attempts, first and retries, with the daemon's answer. */
export function deliveryEvents(attempts: readonly DeliveryAttempt[]): TimelineEvent[] {
  return attempts.map((a) => ({
    kind: "webhook",
    at: a.at,
    ok: typeof a.status === "number" && a.status < 300,
    label: `delivery attempt ${a.attempt}: ${
      a.status === "error" ? "connection refused" : a.status
    }`,
  }));
}

/** A fault window (database cut, endpoint down) from its start to its removal. */
export function faultWindow(label: string, at: number, until: number): TimelineEvent {
  return { kind: "fault", at, until, ok: false, label };
}

/** The daemon's "sync succeeded" line as the recovery moment; nothing when there was none. */
export function recoveryEvents(successLog: LogLine | null): TimelineEvent[] {
  const at = typeof successLog?.time === "string" ? Date.parse(successLog.time) : NaN;
  return Number.isNaN(at) ? [] : [{ kind: "recovery", at, ok: true, label: "sync succeeded" }];
}

/** An API outage: the requests, each failed run with the backoff it granted, the recovery. */
export function apiOutageEvents(e: ApiOutageEvidence): TimelineEvent[] {
  const events = requestEvents(e.providerRequests);
  const failing = e.providerRequests.filter((r) => r.status === e.injectedStatus);
  if (failing.length > 0) {
    // The fault lasts until the provider answers normally again.
    const healed = e.providerRequests.find((r) => r.at > failing[0].at && r.status < 400);
    events.push(
      faultWindow(
        `provider answers ${e.injectedStatus}`,
        failing[0].at,
        healed?.at ?? failing.at(-1)!.at,
      ),
    );
  }
  for (const run of failedRuns(e)) {
    if (run.end === null) continue;
    const until = run.end.state.backoffUntil?.getTime() ?? null;
    events.push({
      kind: "failure",
      at: run.end.at,
      ok: false,
      label: `sync failed (error_count ${run.end.state.errorCount})`,
    });
    if (until !== null) {
      events.push({
        kind: "backoff",
        at: run.end.at,
        until,
        ok: false,
        label: `backoff_until ${new Date(until).toISOString()}`,
      });
    }
  }
  const recovered = recoveryRun(e);
  if (recovered?.end) {
    events.push({ kind: "recovery", at: recovered.end.at, ok: true, label: "sync succeeded" });
  }
  return events;
}
