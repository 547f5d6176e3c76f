/**
 * @module Sets up a soak: scratch database with audit triggers, both fakes, the webhook gate and
 * balancer in front of the replicas, the replicas (each behind its own fault proxy) and the
 * connections, synced once and with live push channels.
 */
import { insertConnection } from "../../src/storage/connections.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { type DrillDatabase, openDrillDatabase } from "../drill/database.ts";
import { DAEMON_SETTINGS } from "../drill/environment.ts";
import type { ProviderKind } from "../drill/evidence.ts";
import { hasActiveChannel } from "../drill/snapshot.ts";
import { waitFor } from "../../testkit/wait.ts";
import { startWebhookGate, type WebhookGate } from "../drill/webhook_gate.ts";
import { installAudit } from "./audit.ts";
import { type Balancer, startBalancer } from "./balancer.ts";
import { type ChaosProvider, startChaosProviders } from "./providers.ts";
import { type Replicas, startReplicas } from "./replicas.ts";

/** One mirrored calendar. */
export type ChaosConnection = { kind: ProviderKind; connectionId: string; calendar: string };

/** Everything a soak runs against; `teardown` stops it all and drops the database. */
export type ChaosEnvironment = {
  db: DrillDatabase;
  providers: ReadonlyMap<ProviderKind, ChaosProvider>;
  gate: WebhookGate;
  balancer: Balancer;
  replicas: Replicas;
  connections: readonly ChaosConnection[];
  teardown(): Promise<void>;
};

/** Sizes of a soak. */
export type EnvironmentOptions = {
  databaseUrl: string | undefined;
  replicas: number;
  connections: number;
  pushDuplicateRate: number;
  log: (text: string) => void;
};

const SEED_EVENTS = 3;
const READY_TIMEOUT_MS = 40_000;

/** Builds the environment; on failure everything already started is stopped again. */
export async function setUpChaos(options: EnvironmentOptions): Promise<ChaosEnvironment> {
  const stack: Array<() => Promise<void>> = [];
  const unwind = async () => {
    for (const step of stack.reverse()) await step().catch(() => {});
  };
  try {
    const db = await openDrillDatabase(options.databaseUrl);
    stack.push(() => db.close({ keep: false }));
    options.log(`database ${db.description}`);
    const providers = startChaosProviders({ pushDuplicateRate: options.pushDuplicateRate });
    stack.push(async () => {
      for (const p of providers.values()) await p.close();
    });
    const gate = startWebhookGate();
    stack.push(() => gate.close());
    let replicas: Replicas | null = null;
    const balancer = startBalancer(() => replicas?.liveUrls() ?? []);
    stack.push(() => balancer.close());
    gate.setTarget(balancer.url);
    const dataDir = await Deno.makeTempDir({ prefix: "calsync-chaos-data-" });
    stack.push(() => Deno.remove(dataDir, { recursive: true }));
    const env: Record<string, string> = {
      ...DAEMON_SETTINGS,
      CALSYNC_PUBLIC_URL: gate.url,
      CALSYNC_DATA_DIR: dataDir,
      ...Object.assign({}, ...[...providers.values()].map((p) => p.env)),
    };
    replicas = await startReplicas(options.replicas, {
      env,
      database: db,
      // The triggers go in once the first replica migrated, before any connection exists.
      afterFirst: () => installAudit(db.adminSql),
    });
    const started = replicas;
    stack.push(() => started.close());
    options.log(
      `replicas ${
        started.slots.map((s) => `${s.name}=pid ${s.current.daemon.process.pid}`).join(", ")
      }`,
    );

    const connections: ChaosConnection[] = [];
    const kinds: ProviderKind[] = ["google", "microsoft"];
    for (const kind of kinds) {
      const provider = providers.get(kind)!;
      const { id: providerId } = await insertProvider(db.adminSql, {
        kind,
        name: `chaos-${kind}`,
        allowlisted: true,
      });
      const share = kind === "google"
        ? Math.ceil(options.connections / 2)
        : Math.floor(options.connections / 2);
      for (let i = 1; i <= share; i++) {
        const calendar = `chaos-${kind === "google" ? "g" : "m"}-${String(i).padStart(2, "0")}`;
        const refreshToken = `chaos-refresh-${calendar}`;
        provider.addRefreshToken(refreshToken);
        for (let e = 1; e <= SEED_EVENTS; e++) provider.createEvent(calendar, `Seed ${e}`);
        const { id } = await insertConnection(db.adminSql, {
          providerId,
          externalCalendarId: calendar,
          refreshToken,
          accountLabel: `chaos soak ${calendar}`,
        });
        connections.push({ kind, connectionId: id, calendar });
      }
    }
    const ids = connections.map((c) => c.connectionId);
    const ready = await waitFor(async () => {
      const [row] = await db.adminSql<{ n: number }[]>`
        select count(*)::int as n from external_calendar_connections
        where id = any(${ids}::uuid[]) and last_success_at is not null and not sync_needed`;
      if (row.n !== ids.length) return false;
      for (const c of connections) {
        if (!providers.get(c.kind)!.hasChannel(c.calendar)) return false;
        if (!(await hasActiveChannel(db.adminSql, c.connectionId))) return false;
      }
      return true;
    }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 });
    if (!ready) {
      throw new Error(
        "Cannot start the soak: not every connection completed its first sync and got a live " +
          `push channel within ${READY_TIMEOUT_MS / 1000} s`,
      );
    }
    return {
      db,
      providers,
      gate,
      balancer,
      replicas: started,
      connections,
      teardown: unwind,
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
