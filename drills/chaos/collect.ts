/** @module Gathers the soak's evidence at the end: processes, metrics, logs, audit and deliveries. */
import type { LogLine } from "../drill/evidence.ts";
import { type Sample, scrapeMetrics, sumSamples } from "../../testkit/prometheus_text.ts";
import { sleep } from "../../testkit/wait.ts";
import { type AuditTrail, measureClockOffset, readAudit } from "./audit.ts";
import type { ChaosEnvironment } from "./environment.ts";
import type { ClockOffset, ProcessEvidence } from "./evidence.ts";

const FAILURES = "calendar_sync_failures_total";

/**
 * Scrapes a process until its failure counters hold still for a moment, then takes its log
 * lines: a failure bumps the counter before it writes its line, and the line needs a moment
 * to come through the pipe.
 */
async function finalScrape(
  url: string,
  logs: () => LogLine[],
): Promise<{ metrics: Sample[] | null; logs: LogLine[] }> {
  let previous: Sample[] | null = null;
  for (let i = 0; i < 10; i++) {
    const current = await scrapeMetrics(url).catch(() => null);
    if (current && previous && sumSamples(current, FAILURES) === sumSamples(previous, FAILURES)) {
      await sleep(300);
      return { metrics: current, logs: [...logs()] };
    }
    previous = current;
    await sleep(300);
  }
  return { metrics: previous, logs: [...logs()] };
}

/** Evidence of every process; stops the live ones (SIGTERM) to record their exit codes. */
export async function collectProcesses(env: ChaosEnvironment): Promise<ProcessEvidence[]> {
  const evidence: ProcessEvidence[] = [];
  for (const p of env.replicas.processes) {
    const killed = p.killedAt !== null;
    const final = killed
      ? { metrics: null, logs: [...p.daemon.logs] }
      : await finalScrape(p.daemon.url, () => p.daemon.logs);
    evidence.push({
      replica: p.replica,
      pid: p.daemon.process.pid,
      killedAt: p.killedAt,
      alive: !killed && p.daemon.alive(),
      health: killed ? null : await p.daemon.health(),
      exitCode: null,
      logs: final.logs,
      metrics: final.metrics,
    });
  }
  const stopped = await env.replicas.stopAll();
  for (const s of stopped) {
    const found = evidence.find((e) => e.pid === s.pid);
    if (found) found.exitCode = s.code;
  }
  return evidence;
}

/** Reads the audit trail and the database clock's offset (measured now and at the start). */
export async function collectAudit(
  env: ChaosEnvironment,
  atStart: ClockOffset,
): Promise<{ audit: AuditTrail; clock: ClockOffset }> {
  const audit = await readAudit(env.db.adminSql);
  const atEnd = await measureClockOffset(env.db.adminSql);
  // Any drift between the two measurements widens the tolerance.
  const clock = {
    offsetMs: (atStart.offsetMs + atEnd.offsetMs) / 2,
    uncertaintyMs: Math.max(atStart.uncertaintyMs, atEnd.uncertaintyMs) +
      Math.abs(atStart.offsetMs - atEnd.offsetMs) / 2,
  };
  return { audit, clock };
}

/**
 * Dedupe keys of the Google change notifications the daemon answered 2xx through the gate, for
 * channels it knows (it answers 200 "ignored" for others, recording nothing). Google's key is
 * documented: channel id and message number. Graph's is a hash of the payload, left out.
 */
export async function acknowledgedGoogleKeys(env: ChaosEnvironment): Promise<string[]> {
  const rows = await env.db.adminSql<{ channel_id: string }[]>`
    select channel_id from webhook_channels where provider = 'google' and channel_id is not null`;
  const known = new Set(rows.map((r) => r.channel_id));
  return env.gate.requests.filter((r) =>
    r.path === "/webhooks/google" && r.status >= 200 && r.status < 300 &&
    r.headers["x-goog-resource-state"] !== "sync" && known.has(r.headers["x-goog-channel-id"])
  ).map((r) => `google:${r.headers["x-goog-channel-id"]}:${r.headers["x-goog-message-number"]}`);
}
