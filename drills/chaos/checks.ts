/**
 * @module The soak's convergence checks on collected evidence: pure functions, so each can be
 * shown to fail on synthetic evidence of a violation.
 */
import type { ReconciliationEvidence } from "./final_reconciliation.ts";
import { sumSamples } from "../../testkit/prometheus_text.ts";
import type { AuditTrail } from "./audit.ts";
import {
  type ChaosEvidence,
  type CheckResult,
  checkResult,
  type MirrorEvidence,
} from "./evidence.ts";
import type { ProcessEvidence } from "./evidence.ts";
import { countByLabel, failureIncrements, missingFailureFields } from "./log_lines.ts";
import { checkExclusiveSyncs } from "./overlap.ts";

const idOf = (tuple: string) => tuple.slice(0, tuple.indexOf("|"));

/** Every connection's mirror equals its provider calendar exactly: ids, titles, etags. */
export function checkConvergence(mirrors: readonly MirrorEvidence[]): CheckResult {
  const violations: string[] = [];
  let events = 0;
  for (const m of mirrors) {
    events += m.provider.length;
    const mirror = new Set(m.mirror);
    const provider = new Set(m.provider);
    const missing = m.provider.filter((t) => !mirror.has(t));
    const extra = m.mirror.filter((t) => !provider.has(t));
    if (missing.length === 0 && extra.length === 0) continue;
    const extraIds = new Set(extra.map(idOf));
    const stale = missing.filter((t) => extraIds.has(idOf(t))).length;
    violations.push(
      `${m.kind} ${m.calendar} (${m.connectionId}): ${missing.length - stale} missing, ` +
        `${extra.length - stale} not deleted, ${stale} stale (title/etag) of ${m.provider.length}`,
    );
  }
  return checkResult(
    "mirror equals provider",
    `${mirrors.length - violations.length}/${mirrors.length} connections equal (${events} events)`,
    violations,
  );
}

/**
 * No dedupe key was processed twice: each key was inserted once, each inserting transaction
 * requested exactly one sync of the key's connection, and every change notification the
 * daemon acknowledged has its key (acknowledged only after commit).
 */
export function checkDedupe(audit: AuditTrail, acknowledged: readonly string[]): CheckResult {
  const violations: string[] = [];
  const inserts = new Map<string, number>();
  for (const k of audit.keys) inserts.set(k.key, (inserts.get(k.key) ?? 0) + 1);
  for (const [key, n] of inserts) {
    if (n > 1) violations.push(`key ${key} inserted ${n} times`);
  }
  const requestsByTx = new Map<string, Map<string, number>>();
  for (const r of audit.requests) {
    const byConnection = requestsByTx.get(r.txid) ?? new Map<string, number>();
    byConnection.set(r.connectionId, (byConnection.get(r.connectionId) ?? 0) + r.delta);
    requestsByTx.set(r.txid, byConnection);
  }
  const keyTx = new Map<string, Set<string>>();
  for (const k of audit.keys) {
    if (k.connectionId === null) continue;
    const connections = keyTx.get(k.txid) ?? new Set<string>();
    connections.add(k.connectionId);
    keyTx.set(k.txid, connections);
  }
  let requests = 0;
  for (const [txid, connections] of keyTx) {
    const made = requestsByTx.get(txid) ?? new Map<string, number>();
    for (const connection of connections) {
      const n = made.get(connection) ?? 0;
      requests += n;
      if (n !== 1) {
        violations.push(`transaction ${txid} recorded a key of ${connection} with ${n} requests`);
      }
    }
    for (const [connection, n] of made) {
      if (!connections.has(connection)) {
        violations.push(`transaction ${txid} requested ${n} syncs of ${connection} without a key`);
      }
    }
  }
  const missing = [...new Set(acknowledged)].filter((key) => !inserts.has(key));
  for (const key of missing.slice(0, 20)) violations.push(`acknowledged ${key} has no key`);
  if (missing.length > 20) violations.push(`... and ${missing.length - 20} more without a key`);
  return checkResult(
    "no dedupe key processed twice",
    `${inserts.size} keys, ${requests} sync requests from webhooks, ` +
      `${new Set(acknowledged).size} acknowledged change notifications checked`,
    violations,
  );
}

/** Every process the soak did not kill was up and healthy at the end, and stopped cleanly. */
export function checkProcesses(processes: readonly ProcessEvidence[]): CheckResult {
  const violations: string[] = [];
  const spared = processes.filter((p) => p.killedAt === null);
  for (const p of spared) {
    const who = `${p.replica} (pid ${p.pid})`;
    if (!p.alive) violations.push(`${who} exited on its own`);
    else if (p.health !== 200) violations.push(`${who} /healthz answered ${p.health ?? "nothing"}`);
    if (p.alive && p.exitCode !== 0) violations.push(`${who} exited ${p.exitCode} on SIGTERM`);
  }
  const killed = processes.length - spared.length;
  return checkResult(
    "every process not killed is up",
    `${spared.length} up and healthy, stopped with exit 0; ${killed} killed on purpose`,
    violations,
  );
}

/**
 * Every failure left a log line and a metric increment: per process, the failure lines imply
 * exactly the `calendar_sync_failures_total{provider,reason}` the process exposes, and each
 * failed sync's line has the fields operators filter on. A killed process's counters are left
 * out: SIGKILL took them, so there is nothing to compare its lines with.
 */
export function checkFailureAccounting(processes: readonly ProcessEvidence[]): CheckResult {
  const violations: string[] = [];
  let lines = 0;
  let compared = 0;
  for (const p of processes) {
    for (const line of p.logs) {
      const missing = missingFailureFields(line);
      if (missing.length > 0) {
        violations.push(
          `${p.replica} (pid ${p.pid}) "${line.message}" lacks ${missing.join(", ")}`,
        );
      }
    }
    if (p.metrics === null) continue;
    compared++;
    const expected = countByLabel(p.logs.flatMap((line) => failureIncrements(line)));
    lines += p.logs.filter((line) => failureIncrements(line).length > 0).length;
    const labels = new Set(expected.keys());
    for (const s of p.metrics) {
      if (s.name === "calendar_sync_failures_total" && s.value > 0) {
        labels.add(`${s.labels.provider}/${s.labels.reason}`);
      }
    }
    for (const label of labels) {
      const [provider, reason] = label.split("/");
      const metric = sumSamples(p.metrics, "calendar_sync_failures_total", { provider, reason });
      const logged = expected.get(label) ?? 0;
      if (metric !== logged) {
        violations.push(
          `${p.replica} (pid ${p.pid}) ${label}: ${logged} from log lines, metric ${metric}`,
        );
      }
    }
  }
  return checkResult(
    "every failure logged and counted",
    `${lines} failure lines match the counters of ${compared} processes ` +
      `(killed processes excluded: SIGKILL lost their counters)`,
    violations,
  );
}

/**
 * The final reconciliation verified every connection and repaired nothing: no fault left drift
 * that only a reconciliation could find.
 */
export function checkNoDrift(evidence: ReconciliationEvidence): CheckResult {
  const violations: string[] = [];
  const repairs = evidence.repairsAfter - evidence.repairsBefore;
  if (!evidence.scraped) violations.push("a replica's /metrics could not be read");
  if (evidence.verified < evidence.connections) {
    violations.push(`${evidence.connections - evidence.verified} connections not verified in time`);
  }
  if (repairs > 0) violations.push(`${repairs} drift repairs (calendar_sync_drift_repairs_total)`);
  return checkResult(
    "final reconciliation repaired nothing",
    `${evidence.verified}/${evidence.connections} connections verified, ${repairs} drift repairs`,
    violations,
  );
}

/** Runs every check, in report order. */
export function runChecks(evidence: ChaosEvidence): CheckResult[] {
  return [
    checkConvergence(evidence.mirrors),
    checkNoDrift(evidence.reconciliation),
    checkDedupe(evidence.audit, evidence.acknowledgedKeys),
    checkExclusiveSyncs(evidence.audit.leases, evidence.processes, evidence.clock),
    checkProcesses(evidence.processes),
    checkFailureAccounting(evidence.processes),
  ];
}
