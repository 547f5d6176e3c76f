/**
 * @module The daemon replicas under test: `main.ts serve` subprocesses on one database, each
 * behind its own fault proxy, that can be SIGKILLed and restarted.
 */
import { type FaultProxy, startFaultProxy } from "../../testkit/fault_proxy.ts";
import { type Daemon, startDaemon } from "../../testkit/daemon.ts";
import { DRILL_DAEMON } from "../drill/environment.ts";

/** One process of a replica; a restart starts a new process in the same slot. */
export type ChaosProcess = {
  /** Slot name, `r1`, `r2`, ... */
  replica: string;
  daemon: Daemon;
  startedAt: number;
  /** When the soak SIGKILLed it (ms since epoch), or null. */
  killedAt: number | null;
};

/** A replica slot: its fault proxy to the database and its current process. */
export type ReplicaSlot = { name: string; proxy: FaultProxy; current: ChaosProcess };

/** All replicas. */
export type Replicas = {
  readonly slots: readonly ReplicaSlot[];
  /** Every process ever started, killed ones included, in start order. */
  readonly processes: readonly ChaosProcess[];
  /** URLs of the processes that are alive and not killed. */
  liveUrls(): string[];
  /** SIGKILLs the slot's process and waits until it is gone. */
  kill(slot: ReplicaSlot): Promise<void>;
  /** Starts a new process in the slot and waits until its scheduler runs. */
  restart(slot: ReplicaSlot): Promise<ChaosProcess>;
  /** SIGTERMs every live process; resolves to their exit codes by replica. */
  stopAll(): Promise<{ replica: string; pid: number; code: number }[]>;
  close(): Promise<void>;
};

async function startProcess(
  name: string,
  env: Record<string, string>,
): Promise<ChaosProcess> {
  let daemon: Daemon;
  try {
    daemon = await startDaemon(env, { ...DRILL_DAEMON, readiness: "scheduler" });
  } catch (error) {
    throw new Error(`Cannot start replica ${name}: ${(error as Error).message}`, { cause: error });
  }
  return { replica: name, daemon, startedAt: Date.now(), killedAt: null };
}

/**
 * Starts `count` replicas one after the other (the first applies the migrations), each with
 * `env` plus a DATABASE_URL through its own proxy to `database`.
 */
export async function startReplicas(
  count: number,
  options: {
    env: Record<string, string>;
    database: { host: string; port: number; roleUrl: string };
    /** Runs after the first replica migrated the database, before the others start. */
    afterFirst?: () => Promise<void>;
  },
): Promise<Replicas> {
  const slots: ReplicaSlot[] = [];
  const processes: ChaosProcess[] = [];
  const envOf = (proxy: FaultProxy) => ({
    ...options.env,
    DATABASE_URL: proxy.url(options.database.roleUrl),
  });
  const replicas: Replicas = {
    slots,
    processes,
    liveUrls: () =>
      slots.filter((s) => s.current.killedAt === null && s.current.daemon.alive())
        .map((s) => s.current.daemon.url),
    async kill(slot) {
      slot.current.killedAt = Date.now();
      // A process already gone is for the check of unexpected exits to report.
      await slot.current.daemon.stop("SIGKILL");
    },
    async restart(slot) {
      const process = await startProcess(slot.name, envOf(slot.proxy));
      slot.current = process;
      processes.push(process);
      return process;
    },
    async stopAll() {
      const live = slots.filter((s) => s.current.killedAt === null);
      return await Promise.all(live.map(async (s) => ({
        replica: s.name,
        pid: s.current.daemon.process.pid,
        code: (await s.current.daemon.stop()).code,
      })));
    },
    async close() {
      await Promise.all(processes.map((p) => p.daemon.stop().catch(() => {})));
      await Promise.all(slots.map((s) => s.proxy.close()));
    },
  };
  try {
    for (let i = 1; i <= count; i++) {
      const proxy = await startFaultProxy({
        targetHostname: options.database.host,
        targetPort: options.database.port,
      });
      const name = `r${i}`;
      let process: ChaosProcess;
      try {
        process = await startProcess(name, envOf(proxy));
      } catch (error) {
        await proxy.close();
        throw error;
      }
      slots.push({ name, proxy, current: process });
      processes.push(process);
      if (i === 1) await options.afterFirst?.();
    }
  } catch (error) {
    await replicas.close();
    throw error;
  }
  return replicas;
}
