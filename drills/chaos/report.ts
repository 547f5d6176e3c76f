/** @module The soak's figures and the printed summary. */
import type { CheckResult, ProcessEvidence } from "./evidence.ts";
import type { FaultKind, InjectionReport } from "./faults.ts";
import type { ChangeCounts } from "./mutator.ts";

/** The numbers a soak prints besides its checks. */
export type ChaosFigures = {
  seed: number;
  durationMs: number;
  replicas: number;
  connections: { google: number; microsoft: number };
  injection: InjectionReport;
  changes: ChangeCounts;
  syncs: { succeeded: number; failed: number; byKind: Record<string, number> };
  notifications: {
    /** Delivery attempts the fakes made (refused connections included). */
    attempts: number;
    /** Deliveries that reached the gate, and how they were answered. */
    gate: { total: number; ok: number; gate503: number; other: Record<string, number> };
    googleDuplicatesSent: number;
    keys: number;
  };
  /** Output lines of the daemons that were not JSON log lines. */
  stray: number;
  convergedMs: number | null;
  settleTimeoutMs: number;
};

/** Successful and failed sync runs across every process, killed ones included. */
export function syncFigures(processes: readonly ProcessEvidence[]): ChaosFigures["syncs"] {
  let succeeded = 0;
  let failed = 0;
  const byKind: Record<string, number> = {};
  for (const p of processes) {
    for (const line of p.logs) {
      const message = String(line.message ?? "");
      if (line.category !== "calsync.sync") continue;
      if (/^Sync of connection \S+ succeeded/.test(message)) succeeded++;
      else if (/^Sync of connection \S+ failed: /.test(message)) {
        failed++;
        const kind = String(line.kind);
        byKind[kind] = (byKind[kind] ?? 0) + 1;
      }
    }
  }
  return { succeeded, failed, byKind };
}

const pairs = (record: Record<string, number>) =>
  Object.entries(record).map(([k, v]) => `${k}=${v}`).join(" ");
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Renders the summary: figures, one line per check with its violations, and the verdict. */
export function renderSummary(figures: ChaosFigures, checks: readonly CheckResult[]): string {
  const f = figures;
  const totalFaults = Object.values(f.injection.counts).reduce((a, b) => a + b, 0);
  const passed = checks.filter((c) => c.passed).length;
  const verdict = passed === checks.length ? "PASS" : "FAIL";
  const lines = [
    `calsync chaos soak: seed ${f.seed}, duration ${
      seconds(f.durationMs)
    }, ${f.replicas} replicas, ` +
    `${f.connections.google + f.connections.microsoft} connections ` +
    `(${f.connections.google} google, ${f.connections.microsoft} microsoft)`,
    `replay: deno task chaos --seed ${f.seed} --duration ${Math.round(f.durationMs / 1000)}`,
    `faults: ${totalFaults} injected: ${pairs(f.injection.counts as Record<FaultKind, number>)}`,
    `mid-transaction cuts: ${f.injection.cuts.fired} fired of ${f.injection.cuts.armed} armed ` +
    `(one arm per replica proxy)`,
    `calendar changes: ${pairs(f.changes)}`,
    `syncs: ${f.syncs.succeeded} succeeded, ${f.syncs.failed} failed` +
    (f.syncs.failed > 0 ? ` (${pairs(f.syncs.byKind)})` : ""),
    `notifications: ${f.notifications.attempts} delivery attempts by the fakes, ` +
    `${f.notifications.gate.total} reached the gate (${f.notifications.gate.ok} 2xx, ` +
    `${f.notifications.gate.gate503} 503 from the gate` +
    (Object.keys(f.notifications.gate.other).length > 0
      ? `, daemon/balancer answered ${pairs(f.notifications.gate.other)})`
      : ")") +
    ", " +
    `${f.injection.replays} replayed, ${f.notifications.googleDuplicatesSent} Google duplicates; ` +
    `${f.notifications.keys} dedupe keys recorded`,
    f.convergedMs === null
      ? `converged: NO, not within ${seconds(f.settleTimeoutMs)} after injection stopped`
      : `converged: ${seconds(f.convergedMs)} after injection stopped`,
    `stray output lines: ${f.stray}`,
    ...checks.flatMap((c) => [
      `${c.passed ? "PASS" : "FAIL"}  ${c.name}: ${c.summary}`,
      ...c.violations.slice(0, 25).map((v) => `      - ${v}`),
      ...(c.violations.length > 25 ? [`      - ... ${c.violations.length - 25} more`] : []),
    ]),
    `RESULT: ${verdict} (${passed}/${checks.length} checks passed)`,
  ];
  return lines.join("\n");
}
