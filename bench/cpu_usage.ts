/**
 * @module CPU accounting from /proc: how busy the whole machine was during a measurement, and
 * how much CPU one process used. On a small machine the daemon, PostgreSQL, the fakes and the
 * load generator share the cores, so these say which limit a figure ran into.
 */

/** A reading to diff against a later one; null fields where /proc is unavailable. */
export type CpuMark = { busy: number; total: number } | null;

const CLOCK_TICKS = 100;

/** Reads the machine-wide CPU counters (all cores, in clock ticks). */
export function markMachine(): CpuMark {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    const total = ticks.slice(0, 8).reduce((sum, t) => sum + t, 0);
    return { busy: total - ticks[3] - ticks[4], total };
  } catch {
    return null;
  }
}

/** Cores busy on average since `since` (e.g. 1.9 of 2), or null where unknown. */
export function coresBusySince(since: CpuMark): number | null {
  const now = markMachine();
  if (!since || !now || now.total === since.total) return null;
  return ((now.busy - since.busy) / (now.total - since.total)) * navigator.hardwareConcurrency;
}

/** CPU seconds (user + system) a process has used so far, or null when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
