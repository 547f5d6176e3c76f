/**
 * @module "No connection synced by two replicas at once", from the lease audit and the logs.
 *
 * A sync run holds the connection's lease from its claim to its end. The audit trigger records
 * every lease hand-over on the database clock, so two kinds of overlap are visible:
 * - a claim that replaced a lease which had not expired yet (the claim guard failed): the audit
 *   alone shows it, on one clock;
 * - a takeover of an expired lease while the run holding it was still going (a run longer than
 *   its lease): the old run's end is the line its process logged for that connection (every
 *   run ends with exactly one: success, failure, cancel) or the moment the soak killed it, and
 *   it must not come after the takeover. Audit and log times meet through the measured clock
 *   offset, with its uncertainty as tolerance.
 * Channel maintenance holds the same lease (owner `channels:...`) and is never taken over here
 * as a sync; a run whose claim committed but whose answer was lost logged nothing and ran
 * nothing, so it cannot overlap.
 */
import type { LeaseChange } from "./audit.ts";
import {
  type CheckResult,
  checkResult,
  type ClockOffset,
  type ProcessEvidence,
} from "./evidence.ts";
import { lineTime, runEndConnection } from "./log_lines.ts";

const OWNER = /:(\d+)\/[0-9a-f]{8}:[0-9a-f-]+$/;

/** The pid in a lease owner (`host:pid/claim:connection`), or null. */
export function ownerPid(owner: string): number | null {
  const match = owner.match(OWNER);
  return match ? Number(match[1]) : null;
}

/** Checks that no two runs held or used one connection at the same time. */
export function checkExclusiveSyncs(
  leases: readonly LeaseChange[],
  processes: readonly ProcessEvidence[],
  clock: ClockOffset,
): CheckResult {
  const violations: string[] = [];
  const tolerance = clock.uncertaintyMs + 2;
  const local = (dbTime: number) => dbTime - clock.offsetMs;
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const ends = new Map<number, { connection: string; at: number }[]>();
  for (const p of processes) {
    ends.set(
      p.pid,
      p.logs.flatMap((line) => {
        const connection = runEndConnection(line);
        return connection ? [{ connection, at: lineTime(line) }] : [];
      }),
    );
  }
  let claims = 0;
  let takeovers = 0;
  for (const [index, change] of leases.entries()) {
    if (change.newOwner !== null) claims++;
    if (change.oldOwner === null || change.newOwner === null) continue;
    takeovers++;
    const c = change.connectionId;
    if (change.oldExpiresAt !== null && change.oldExpiresAt > change.at) {
      violations.push(
        `${c}: ${change.newOwner} claimed it while ${change.oldOwner}'s lease ran ` +
          `${change.oldExpiresAt - change.at} ms more`,
      );
      continue;
    }
    if (change.oldOwner.startsWith("channels:")) continue;
    const pid = ownerPid(change.oldOwner);
    const holder = pid === null ? undefined : byPid.get(pid);
    if (!holder) {
      violations.push(`${c}: lease ${change.oldOwner} belongs to no process of the soak`);
      continue;
    }
    const claimed = leases.slice(0, index).findLast((l) =>
      l.connectionId === c && l.newOwner === change.oldOwner
    );
    if (!claimed) continue;
    // The holder's next claim of this connection starts a new run; its end line is not ours.
    const next = leases.slice(index + 1).find((l) =>
      l.connectionId === c && l.newOwner !== null && ownerPid(l.newOwner) === pid
    );
    const from = local(claimed.at) - tolerance;
    const until = next ? local(next.at) + tolerance : Infinity;
    const end = ends.get(holder.pid)!.find((e) =>
      e.connection === c && e.at >= from && e.at < until
    );
    const runEnd = end?.at ?? holder.killedAt;
    if (runEnd === null || runEnd === undefined) continue;
    const overlap = runEnd - local(change.at);
    if (overlap > tolerance) {
      const newPid = ownerPid(change.newOwner);
      violations.push(
        `${c}: ${holder.replica} (pid ${holder.pid}) was still syncing it ${
          Math.round(overlap)
        } ms ` +
          `after pid ${newPid} took its expired lease`,
      );
    }
  }
  return checkResult(
    "no connection synced by two replicas at once",
    `${claims} claims, ${takeovers} takeovers of expired leases, clock tolerance ` +
      `${tolerance.toFixed(1)} ms`,
    violations,
  );
}
