/** @module A calsync daemon subprocess for benchmarks: started ready, with its peak RSS readable. */
import { CONFIG_VARIABLES } from "../src/config/config.ts";
import { type Daemon, startDaemon } from "../testkit/daemon.ts";

/** A running daemon plus memory readings from `/proc/<pid>/status`. */
export type BenchDaemon = Daemon & {
  /** Peak resident set (VmHWM) since start or the last `resetPeakRss`, in bytes; null off Linux. */
  peakRssBytes(): number | null;
  /** Starts a new peak window (writes 5 to clear_refs); false where the kernel refuses. */
  resetPeakRss(): boolean;
};

/**
 * Starts `main.ts serve` with `env` and waits until `/readyz` answers 200 (migrated, scheduling).
 * calsync variables of the calling shell are blanked (empty means unset), so only `env` counts;
 * PORT and HOST stay with startDaemon (a free loopback port). With `cpuProfDir` the daemon runs
 * under `--cpu-prof` and leaves a `.cpuprofile` there when it exits.
 */
export async function startBenchDaemon(
  env: Record<string, string>,
  options: { cpuProfDir?: string } = {},
): Promise<BenchDaemon> {
  const blank = Object.fromEntries(
    CONFIG_VARIABLES.filter((name) => name !== "PORT" && name !== "HOST").map((name) => [name, ""]),
  );
  // The profile is written when the daemon exits, so stopDaemons' clean SIGTERM exit matters.
  const denoFlags = options.cpuProfDir
    ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`]
    : [];
  const daemon = await startDaemon({ ...blank, ...env }, { readiness: "readyz", denoFlags });
  const pid = daemon.process.pid;
  return {
    ...daemon,
    peakRssBytes: () => readStatusKb(pid, "VmHWM"),
    resetPeakRss() {
      try {
        Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** Stops daemons with SIGTERM and fails loudly if one did not exit cleanly. */
export async function stopDaemons(daemons: readonly Daemon[]): Promise<void> {
  const statuses = await Promise.all(daemons.map((daemon) => daemon.stop()));
  const bad = statuses.findIndex((status) => status.code !== 0);
  if (bad >= 0) {
    throw new Error(
      `Daemon exited with code ${statuses[bad].code}; last output: ` +
        daemons[bad].strayLines.slice(-5).join(" | "),
    );
  }
}

function readStatusKb(pid: number, field: string): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
