/**
 * @module After settling: one reconciliation of every connection, and the drift it repaired.
 * Convergence compares ids, titles and etags; a reconciliation compares every field against a
 * full listing, so drift that only it could find (a fault that left a stale column, a row
 * outside what the cursor brings) shows as repairs here. Zero repairs is the pass.
 */
import { scrapeMetrics, sumSamples } from "../../testkit/prometheus_text.ts";
import { sleep } from "../../testkit/wait.ts";
import type { ChaosEnvironment } from "./environment.ts";

/** What the final reconciliation did: connections verified, and the repairs it counted. */
export type ReconciliationEvidence = {
  connections: number;
  verified: number;
  /** calendar_sync_drift_repairs_total summed over the live replicas, before and after. */
  repairsBefore: number;
  repairsAfter: number;
  /** False when a replica's /metrics could not be read (the repairs are then unknown). */
  scraped: boolean;
};

const DRIFT = "calendar_sync_drift_repairs_total";

async function repairsNow(env: ChaosEnvironment): Promise<number | null> {
  let total = 0;
  for (const p of env.replicas.processes.filter((p) => p.killedAt === null)) {
    const samples = await scrapeMetrics(p.daemon.url).catch(() => null);
    if (samples === null) return null;
    total += sumSamples(samples, DRIFT);
  }
  return total;
}

/** Makes every connection's reconciliation due now and waits until each has been verified. */
export async function finalReconciliation(
  env: ChaosEnvironment,
  options: { timeoutMs: number },
): Promise<ReconciliationEvidence> {
  const sql = env.db.adminSql;
  const ids = env.connections.map((c) => c.connectionId);
  const before = await repairsNow(env);
  const [{ mark }] = await sql<{ mark: Date }[]>`
    update external_calendar_connections set reconcile_due_at = now(), due_at = now()
    where id = any(${ids}::uuid[])
    returning (select clock_timestamp()) as mark`;
  const deadline = Date.now() + options.timeoutMs;
  let verified = 0;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from external_calendar_connections
      where id = any(${ids}::uuid[]) and last_verified_at >= ${mark}
        and lease_owner is null and not sync_needed`;
    verified = row.n;
    if (verified === ids.length || Date.now() >= deadline) break;
    await sleep(200);
  }
  const after = await repairsNow(env);
  return {
    connections: ids.length,
    verified,
    repairsBefore: before ?? 0,
    repairsAfter: after ?? 0,
    scraped: before !== null && after !== null,
  };
}
