/** @module Steps every scenario takes: metric scrapes, waits for syncs, recovery evidence. */
import { runCli } from "../../testkit/daemon.ts";
import { DRILL_LAUNCH, type DrillConnection, type DrillEnvironment } from "./environment.ts";
import type { CommandResult, LogLine, RecoveryEvidence } from "./evidence.ts";
import { scrapeMetrics, sumSamples } from "../../testkit/prometheus_text.ts";
import { mirrorTuples, readConnection } from "./snapshot.ts";
import { waitFor } from "../../testkit/wait.ts";

/** The failure counter of the drill document. */
export const FAILURES_METRIC = "calendar_sync_failures_total";

/** Scrapes the daemon and sums `calendar_sync_failures_total` over samples with `labels`. */
export async function failureCount(
  env: DrillEnvironment,
  labels: Record<string, string>,
): Promise<number> {
  return sumSamples(await scrapeMetrics(env.daemon.url), FAILURES_METRIC, labels);
}

/** Scrapes the daemon and sums counter `name` over samples with `labels`. */
export async function counterValue(
  env: DrillEnvironment,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  return sumSamples(await scrapeMetrics(env.daemon.url), name, labels);
}

/** Renders a metric selector for evidence text (`calendar_sync_failures_total` by default). */
export function selector(labels: Record<string, string>, name = FAILURES_METRIC): string {
  const inner = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",");
  return `${name}{${inner}}`;
}

/** True for the daemon's "sync succeeded" line of one connection. */
export function isSuccessLine(connectionId: string): (line: LogLine) => boolean {
  return (line) =>
    line.connection_id === connectionId && line.level === "info" &&
    typeof line.message === "string" && line.message.endsWith("succeeded");
}

/** True for an error line of one connection's sync. */
export function isFailureLine(connectionId: string): (line: LogLine) => boolean {
  return (line) => line.connection_id === connectionId && line.level === "error";
}

/** Waits until the connection has nothing left to do: no sync needed, no lease held. */
export async function waitIdle(env: DrillEnvironment, c: DrillConnection, timeoutMs = 10_000) {
  return await waitFor(async () => {
    const row = await readConnection(env.db.adminSql, c.connectionId);
    return row !== null && !row.syncNeeded && row.leaseOwner === null;
  }, { timeoutMs, intervalMs: 50 });
}

/** Runs `calsync sync --connection ID` as an operator would, with the daemon's settings. */
export async function operatorSync(
  env: DrillEnvironment,
  c: DrillConnection,
): Promise<CommandResult> {
  const { code, stderr, durationMs } = await runCli(
    ["sync", "--connection", c.connectionId],
    env.daemonEnv,
    DRILL_LAUNCH,
  );
  return { code, stderr, durationMs };
}

/**
 * Waits for a successful sync logged after `since` and for the connection to settle, then reads
 * what recovery checks need: the row, the mirror and the provider's live events.
 */
export async function collectRecovery(
  env: DrillEnvironment,
  c: DrillConnection,
  since: number,
  timeoutMs: number,
): Promise<RecoveryEvidence> {
  const successLog = await env.daemon.waitForLog(isSuccessLine(c.connectionId), {
    since,
    timeoutMs,
  });
  if (successLog !== null) await waitIdle(env, c, 5_000);
  const provider = env.providers.get(c.kind)!;
  return {
    successLog,
    row: await readConnection(env.db.adminSql, c.connectionId),
    mirror: await mirrorTuples(env.db.adminSql, c.connectionId),
    provider: provider.liveTuples(c.calendar),
  };
}
