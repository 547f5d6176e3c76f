/** @module Runs one chaos soak end to end: set up, change and fault, settle, collect, check. */
import { sleep } from "../../testkit/wait.ts";
import { measureClockOffset } from "./audit.ts";
import { runChecks } from "./checks.ts";
import { acknowledgedGoogleKeys, collectAudit, collectProcesses } from "./collect.ts";
import { setUpChaos } from "./environment.ts";
import type { CheckResult } from "./evidence.ts";
import { runInjector } from "./faults.ts";
import { runMutator } from "./mutator.ts";
import { createPrng } from "./prng.ts";
import { type ChaosFigures, syncFigures } from "./report.ts";
import { settle } from "./settle.ts";
import { finalReconciliation } from "./final_reconciliation.ts";

/** Settings of one soak. */
export type ChaosOptions = {
  seed: number;
  durationMs: number;
  replicas: number;
  connections: number;
  settleTimeoutMs: number;
  /** Server for the scratch database; undefined: an embedded server. */
  databaseUrl: string | undefined;
  pushDuplicateRate: number;
  /** Progress lines (stderr), so stdout carries only the summary. */
  log: (text: string) => void;
};

/** What a soak found. */
export type ChaosOutcome = { figures: ChaosFigures; checks: CheckResult[]; passed: boolean };

function statusCounts(requests: readonly { status: number }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) counts[String(r.status)] = (counts[String(r.status)] ?? 0) + 1;
  return counts;
}

/** Runs the soak; throws only when it could not run at all (setup failed). */
export async function runChaos(options: ChaosOptions): Promise<ChaosOutcome> {
  const { log } = options;
  const env = await setUpChaos({
    databaseUrl: options.databaseUrl,
    replicas: options.replicas,
    connections: options.connections,
    pushDuplicateRate: options.pushDuplicateRate,
    log,
  });
  try {
    const clockAtStart = await measureClockOffset(env.db.adminSql);
    log(`ready: ${env.connections.length} connections synced with live push channels`);
    // Two streams from one seed: the fault schedule does not shift when changes are drawn.
    const faultPrng = createPrng(options.seed);
    const changePrng = createPrng((options.seed ^ 0x9e37_79b9) >>> 0);
    const stop = new AbortController();
    const mutating = runMutator({
      prng: changePrng,
      connections: env.connections,
      providers: env.providers,
      signal: stop.signal,
    });
    const injecting = runInjector(env, {
      prng: faultPrng,
      durationMs: options.durationMs,
      signal: stop.signal,
    });
    await sleep(options.durationMs);
    stop.abort();
    const [changes, injection] = await Promise.all([mutating, injecting]);
    const since = Date.now();
    log(`injection stopped; settling (up to ${options.settleTimeoutMs / 1000} s)`);
    const settled = await settle(env, { timeoutMs: options.settleTimeoutMs, since });
    log("converged or timed out; reconciling every connection once");
    const reconciliation = await finalReconciliation(env, { timeoutMs: options.settleTimeoutMs });
    const processes = await collectProcesses(env);
    const { audit, clock } = await collectAudit(env, clockAtStart);
    const acknowledgedKeys = await acknowledgedGoogleKeys(env);
    const checks = runChecks({
      mirrors: settled.mirrors,
      audit,
      clock,
      processes,
      acknowledgedKeys,
      reconciliation,
    });
    const deliveries = [...env.providers.values()].map((p) => p.deliveries());
    const gateDeliveries = env.gate.requests.filter((r) => r.path.startsWith("/webhooks/"));
    const figures: ChaosFigures = {
      seed: options.seed,
      durationMs: options.durationMs,
      replicas: options.replicas,
      connections: {
        google: env.connections.filter((c) => c.kind === "google").length,
        microsoft: env.connections.filter((c) => c.kind === "microsoft").length,
      },
      injection,
      changes,
      syncs: syncFigures(processes),
      notifications: {
        attempts: deliveries.reduce((n, d) => n + d.attempts, 0),
        gate: {
          total: gateDeliveries.length,
          ok: gateDeliveries.filter((r) => r.status >= 200 && r.status < 300).length,
          gate503: gateDeliveries.filter((r) => r.mode === "unavailable").length,
          other: statusCounts(
            gateDeliveries.filter((r) => r.mode === "pass" && (r.status < 200 || r.status >= 300)),
          ),
        },
        googleDuplicatesSent: deliveries.reduce((n, d) => n + d.duplicatesSent, 0),
        keys: audit.keys.length,
      },
      stray: env.replicas.processes.reduce((n, p) => n + p.daemon.strayLines.length, 0),
      convergedMs: settled.convergedMs,
      settleTimeoutMs: options.settleTimeoutMs,
    };
    return { figures, checks, passed: checks.every((c) => c.passed) };
  } finally {
    await env.teardown();
  }
}
