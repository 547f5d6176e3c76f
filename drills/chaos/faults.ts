/**
 * @module The fault injector: draws faults from the seeded PRNG for the soak's duration
 * (provider errors, database cuts, webhook outages, one replica SIGKILLed and restarted), and
 * removes every one of them when it stops.
 */
import type { Fault } from "../../testkit/fake_faults.ts";
import type { ProviderKind } from "../drill/evidence.ts";
import { sleep } from "../../testkit/wait.ts";
import type { ChaosEnvironment } from "./environment.ts";
import type { Prng } from "./prng.ts";

/** Every kind of fault the soak injects. */
export const FAULT_KINDS = [
  "provider_503",
  "provider_429",
  "provider_hang",
  "provider_malformed",
  "provider_410",
  "db_reset",
  "db_refuse",
  "db_cut_mid_tx",
  "db_stall",
  "webhook_503",
  "webhook_refused",
  "replica_kill",
] as const;

/** One kind of fault. */
export type FaultKind = typeof FAULT_KINDS[number];

/** One injected fault, for the timeline. */
export type FaultRecord = { at: number; kind: FaultKind; detail: string };

/** What the injector did. */
export type InjectionReport = {
  counts: Record<FaultKind, number>;
  timeline: FaultRecord[];
  /** Mid-transaction cuts armed, and how many of them cut a transaction. */
  cuts: { armed: number; fired: number };
  /** Provider deliveries replayed through the gate (duplicates, as providers resend). */
  replays: number;
};

const PROVIDER_FAULTS: Record<string, Fault> = {
  provider_503: { kind: "status", status: 503 },
  provider_429: { kind: "status", status: 429, retryAfter: "1" },
  provider_hang: { kind: "hang" },
  provider_malformed: { kind: "malformed" },
};

/** Injects faults until `signal` aborts, then removes them all; resolves to what it did. */
export async function runInjector(
  env: ChaosEnvironment,
  options: { prng: Prng; durationMs: number; signal: AbortSignal },
): Promise<InjectionReport> {
  const { prng, signal } = options;
  const started = Date.now();
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const timeline: FaultRecord[] = [];
  const cuts = { armed: 0, fired: 0 };
  const pending = new Set<Promise<void>>();
  // Restores of faults still held; whoever removes one from the set runs it, exactly once.
  const restores = new Set<() => Promise<void>>();
  let webhookDown = false;
  let replays = 0;

  const record = (kind: FaultKind, detail: string) => {
    counts[kind]++;
    timeline.push({ at: Date.now() - started, kind, detail });
    return true;
  };
  const track = (work: Promise<void>) => {
    const tracked = work.catch(() => {}).finally(() => pending.delete(tracked));
    pending.add(tracked);
  };
  /** Holds a fault for `ms` (or until the injector stops), then runs `restore`. */
  const hold = (ms: number, restore: () => Promise<void>) => {
    restores.add(restore);
    track((async () => {
      await Promise.race([
        sleep(ms),
        new Promise((r) => signal.addEventListener("abort", r, { once: true })),
      ]);
      if (restores.delete(restore)) await restore();
    })());
  };
  // A fake keeps one API fault at a time and a new one replaces it: a provider takes a new
  // fault only once its last one was served `times` times, so every counted fault was served.
  const served = new Map<ProviderKind, { mark: number; times: number }>();
  const ready = (kind: ProviderKind) => {
    const last = served.get(kind);
    return !last || env.providers.get(kind)!.apiRequests() - last.mark >= last.times;
  };
  const liveSlots = () => env.replicas.slots.filter((s) => s.current.killedAt === null);

  /** Injects one fault; false when it could not now (then the caller draws another). */
  function inject(kind: FaultKind): boolean {
    const kindOfProvider: ProviderKind = prng.pick(["google", "microsoft"] as const);
    const provider = env.providers.get(kindOfProvider)!;
    switch (kind) {
      case "provider_503":
      case "provider_429":
      case "provider_hang":
      case "provider_malformed": {
        const times = kind === "provider_hang" ? prng.int(1, 2) : prng.int(1, 4);
        if (!ready(kindOfProvider)) return false;
        served.set(kindOfProvider, { mark: provider.apiRequests(), times });
        provider.setFault(PROVIDER_FAULTS[kind], { target: "api", times });
        record(kind, `${kindOfProvider} x${times}`);
        return true;
      }
      case "provider_410": {
        const calendars = env.connections.filter((c) => c.kind === kindOfProvider);
        const picked = prng.shuffle(calendars).slice(0, prng.int(1, 4));
        for (const c of picked) provider.invalidateSyncTokens(c.calendar);
        return record(kind, `${kindOfProvider} ${picked.map((c) => c.calendar).join(",")}`);
      }
      case "db_reset": {
        const slot = prng.pick(liveSlots());
        slot.proxy.resetAll();
        return record(kind, slot.name);
      }
      case "db_refuse": {
        const slot = prng.pick(liveSlots());
        const ms = prng.int(800, 2_500);
        track(slot.proxy.refuseNew(true));
        slot.proxy.resetAll();
        hold(ms, () => slot.proxy.refuseNew(false));
        return record(kind, `${slot.name} ${ms} ms`);
      }
      case "db_stall": {
        // Traffic held both ways with sockets open: a half-open database, which only the
        // daemon's own deadlines get it out of.
        const slot = prng.pick(liveSlots());
        const ms = prng.int(500, 2_000);
        slot.proxy.blackhole(true);
        hold(ms, () => Promise.resolve(slot.proxy.blackhole(false)));
        return record(kind, `${slot.name} ${ms} ms`);
      }
      case "db_cut_mid_tx": {
        // A marker in a new event's title travels in the sync's write transaction; the proxy
        // of whichever replica writes it cuts that connection mid-transaction.
        const c = prng.pick(env.connections);
        const marker = `CHAOS-CUT-${counts.db_cut_mid_tx + 1}-${prng.int(1e6, 9e6)}`;
        const after = prng.pick(["forward", "drop"] as const);
        for (const slot of env.replicas.slots) {
          cuts.armed++;
          slot.proxy.cutWhen(marker, { after }).then(() => cuts.fired++, () => {});
        }
        const target = env.providers.get(c.kind)!;
        const id = target.createEvent(c.calendar, marker);
        // Renamed later (without the marker), so an arm that never fired cannot match once
        // the injector has stopped.
        hold(4_000, () => Promise.resolve(target.updateEvent(c.calendar, id, "Cut renamed")));
        return record(kind, `${c.calendar} (${after})`);
      }
      case "webhook_503":
      case "webhook_refused": {
        if (webhookDown) return false;
        webhookDown = true;
        const ms = prng.int(800, 2_500);
        track(env.gate.setMode(kind === "webhook_503" ? "unavailable" : "refuse"));
        hold(ms, async () => {
          await env.gate.setMode("pass");
          webhookDown = false;
        });
        return record(kind, `${ms} ms`);
      }
      case "replica_kill":
        return false;
    }
  }

  async function killAndRestart(): Promise<void> {
    const slot = prng.pick(liveSlots());
    const pid = slot.current.daemon.process.pid;
    await env.replicas.kill(slot);
    record("replica_kill", `${slot.name} pid ${pid}`);
    await sleep(prng.int(1_000, 2_500));
    const process = await env.replicas.restart(slot);
    timeline.push({
      at: Date.now() - started,
      kind: "replica_kill",
      detail: `${slot.name} restarted as pid ${process.daemon.process.pid}`,
    });
  }

  const killAt = Math.round(options.durationMs * (0.25 + prng.next() * 0.25));
  let killed: Promise<void> | null = null;
  // Every kind once first (in a seeded order), so even a short run covers all of them.
  const queue: FaultKind[] = prng.shuffle(FAULT_KINDS.filter((k) => k !== "replica_kill"));
  const weights = Object.fromEntries(
    FAULT_KINDS.filter((k) => k !== "replica_kill").map((k) => [k, k.startsWith("db_") ? 3 : 2]),
  ) as Record<Exclude<FaultKind, "replica_kill">, number>;
  while (!signal.aborted) {
    if (killed === null && Date.now() - started >= killAt) killed = killAndRestart();
    const queued = queue.shift();
    // A kind that cannot go in now stays queued, so the first round still covers every kind.
    if (!inject(queued ?? prng.weighted(weights)) && queued) queue.push(queued);
    if (prng.chance(0.5)) replays += await replayOne(env, prng);
    await Promise.race([
      sleep(prng.int(300, 900)),
      new Promise((r) => signal.addEventListener("abort", r, { once: true })),
    ]);
  }
  if (killed === null) killed = killAndRestart();
  await killed;
  for (const p of env.providers.values()) p.setFault(null);
  for (const restore of [...restores]) {
    restores.delete(restore);
    await restore().catch(() => {});
  }
  while (pending.size > 0) await Promise.allSettled([...pending]);
  await env.gate.setMode("pass");
  for (const slot of env.replicas.slots) await slot.proxy.refuseNew(false);
  return { counts, timeline, cuts, replays };
}

/** Sends a copy of an earlier acknowledged delivery through the gate, as a provider resend. */
async function replayOne(env: ChaosEnvironment, prng: Prng): Promise<number> {
  const delivered = env.gate.requests.filter((r) =>
    r.method === "POST" && r.status >= 200 && r.status < 300 && r.path.startsWith("/webhooks/") &&
    !r.search.includes("validationToken")
  );
  if (delivered.length === 0 || env.gate.mode() !== "pass") return 0;
  await env.gate.replay(prng.pick(delivered));
  return 1;
}
