/** @module After the faults: request a sync of everything and wait until calsync is idle and equal. */
import { requestSync } from "../../src/storage/connections.ts";
import { mirrorTuples } from "../drill/snapshot.ts";
import { sleep } from "../../testkit/wait.ts";
import type { ChaosEnvironment } from "./environment.ts";
import type { MirrorEvidence } from "./evidence.ts";

/** How settling went: time to converge (null: not within the timeout) and the last mirrors. */
export type SettleResult = {
  convergedMs: number | null;
  mirrors: MirrorEvidence[];
  /** Connections still due, leased or not active when settling ended. */
  busy: number;
};

/** Reads every connection's mirror and its provider calendar. */
export async function readMirrors(env: ChaosEnvironment): Promise<MirrorEvidence[]> {
  return await Promise.all(env.connections.map(async (c) => ({
    connectionId: c.connectionId,
    kind: c.kind,
    calendar: c.calendar,
    mirror: await mirrorTuples(env.db.adminSql, c.connectionId),
    provider: env.providers.get(c.kind)!.liveTuples(c.calendar),
  })));
}

async function busyConnections(env: ChaosEnvironment): Promise<number> {
  const [row] = await env.db.adminSql<{ n: number }[]>`
    select count(*)::int as n from external_calendar_connections
    where sync_needed or status <> 'active'
      or (lease_owner is not null and lease_expires_at > now())`;
  return row.n;
}

const equal = (m: MirrorEvidence) =>
  m.mirror.length === m.provider.length && m.mirror.every((t, i) => t === m.provider[i]);

/**
 * Requests a sync of every connection (backoffs respected, as an operator's `calsync sync`
 * would), then polls until none is due or leased and every mirror equals its calendar.
 */
export async function settle(
  env: ChaosEnvironment,
  options: { timeoutMs: number; since: number },
): Promise<SettleResult> {
  for (const c of env.connections) await requestSync(env.db.adminSql, c.connectionId);
  const deadline = Date.now() + options.timeoutMs;
  let mirrors: MirrorEvidence[] = [];
  let busy = -1;
  for (;;) {
    busy = await busyConnections(env).catch(() => -1);
    if (busy === 0) {
      mirrors = await readMirrors(env);
      if (mirrors.every(equal)) return { convergedMs: Date.now() - options.since, mirrors, busy };
    }
    if (Date.now() >= deadline) break;
    await sleep(200);
  }
  if (mirrors.length === 0) mirrors = await readMirrors(env);
  return { convergedMs: null, mirrors, busy };
}
