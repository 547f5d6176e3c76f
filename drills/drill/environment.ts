/**
 * @module Sets up everything a drill runs against: scratch database, fault proxy, fake providers,
 * webhook gate, the daemon under test, and one connection per scenario and provider.
 */
import { insertConnection } from "../../src/storage/connections.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import {
  type Daemon,
  type DaemonOptions,
  type LaunchOptions,
  startDaemon,
  waitForScheduler,
} from "../../testkit/daemon.ts";
import { type FaultProxy, startFaultProxy } from "../../testkit/fault_proxy.ts";
import { installAudit } from "./audit.ts";
import { type DrillDatabase, openDrillDatabase } from "./database.ts";
import type { ProviderKind, ScenarioName } from "./evidence.ts";
import { type DrillProvider, startDrillProvider } from "./providers.ts";
import { hasActiveChannel } from "./snapshot.ts";
import { waitFor } from "../../testkit/wait.ts";
import { startWebhookGate, type WebhookGate } from "./webhook_gate.ts";

/** The connection a scenario works on, for one provider. */
export type DrillConnection = {
  scenario: ScenarioName;
  /** Which of the scenario's connections ("main" unless the scenario asked for several). */
  variant: string;
  kind: ProviderKind;
  providerId: string;
  connectionId: string;
  calendar: string;
};

/** Settings of the daemon under test the checks need to know. */
export const DAEMON_SETTINGS = {
  // A ceiling four times the base: the third failure in a row must wait at least twice what a
  // backoff that never grows could give, whatever the jitter.
  SYNC_BACKOFF_BASE_MS: "500",
  SYNC_BACKOFF_MAX_MS: "2000",
  SYNC_HTTP_TIMEOUT_MS: "1000",
  SCHEDULER_POLL_INTERVAL_MS: "200",
  SYNC_LEASE_MS: "5000",
  DB_STATEMENT_TIMEOUT_MS: "2000",
  DB_CONNECT_TIMEOUT_MS: "1000",
  DB_POOL_MAX: "4",
  CALSYNC_SHUTDOWN_TIMEOUT_MS: "3000",
  WEBHOOK_RESPONSE_DEADLINE_MS: "1500",
  SYNC_PROVIDER_ALLOWLIST: "google,microsoft",
  // The outage scenario's breaker: probes 1 s, 2 s, then every 4 s; recovery drains in ~1 s.
  SYNC_BREAKER_PROBE_INTERVAL: "1000ms",
  SYNC_BREAKER_PROBE_MAX: "4000ms",
  SYNC_BREAKER_DRAIN_STEP: "200ms",
  LOG_LEVEL: "info",
} as const;

/**
 * How the drill runs calsync: with exactly the environment it gives (an operator's own calsync
 * or PG* settings must not change the daemon under test), as the calsync that is running (the
 * compiled binary drills itself).
 */
export const DRILL_LAUNCH: LaunchOptions = { clearEnv: true, program: "self" };

/** The drill's daemon: started as DRILL_LAUNCH; SIGKILLed if it outlives its shutdown deadline. */
export const DRILL_DAEMON: DaemonOptions = {
  ...DRILL_LAUNCH,
  listenTimeoutMs: 30_000,
  // Its own shutdown deadline is a few seconds; a daemon that outlives it is killed.
  killAfterMs: 15_000,
};

/** Everything one drill run uses; `teardown` stops it all. */
export type DrillEnvironment = {
  db: DrillDatabase;
  proxy: FaultProxy;
  gate: WebhookGate;
  daemon: Daemon;
  providers: ReadonlyMap<ProviderKind, DrillProvider>;
  connections: readonly DrillConnection[];
  connection(scenario: ScenarioName, kind: ProviderKind, variant?: string): DrillConnection;
  /** The daemon's environment; operator commands run with it too (database via the proxy). */
  daemonEnv: Record<string, string>;
  /** Whether the daemon has working webhook endpoints and channels, and if not, why. */
  webhooks: { available: boolean; note: string };
  /** Stops everything; with `keep`, the scratch database stays. */
  teardown(options: { keep: boolean }): Promise<void>;
};

const SEED_EVENTS = 3;

/** Seeds a calendar at the fake and connects it, with its own provider row (its own labels). */
async function addConnection(
  db: DrillDatabase,
  provider: DrillProvider,
  where: { scenario: ScenarioName; variant: string; kind: ProviderKind },
): Promise<DrillConnection> {
  const { scenario, variant, kind } = where;
  const name = variant === "main" ? scenario : `${scenario}-${variant}`;
  const calendar = `drill-${name}`;
  const refreshToken = `drill-refresh-${name}-${kind}`;
  provider.addRefreshToken(refreshToken);
  for (let i = 1; i <= SEED_EVENTS; i++) provider.putEvent(calendar, `Seed ${i} (${name})`);
  const { id: providerId } = await insertProvider(db.adminSql, {
    kind,
    name: `drill-${name}-${kind}`,
    allowlisted: true,
  });
  const { id: connectionId } = await insertConnection(db.adminSql, {
    providerId,
    externalCalendarId: calendar,
    refreshToken,
    accountLabel: `outage drill: ${name}`,
  });
  return { scenario, variant, kind, providerId, connectionId, calendar };
}

async function webhookAvailability(
  daemon: Daemon,
  db: DrillDatabase,
  connections: readonly DrillConnection[],
  providers: ReadonlyMap<ProviderKind, DrillProvider>,
): Promise<{ available: boolean; note: string }> {
  const kinds = [...new Set(connections.map((c) => c.kind))];
  for (const kind of kinds) {
    const response = await fetch(`${daemon.url}/webhooks/${kind}`, { method: "POST", body: "" });
    const text = await response.text();
    if (response.status === 404 && text.includes("No route")) {
      return { available: false, note: "webhook endpoint not available" };
    }
  }
  const ready = await waitFor(async () => {
    for (const c of connections) {
      if (!providers.get(c.kind)!.hasChannel(c.calendar)) return false;
      if (!(await hasActiveChannel(db.adminSql, c.connectionId))) return false;
    }
    return true;
  }, { timeoutMs: 15_000, intervalMs: 100 });
  return ready
    ? { available: true, note: "" }
    : { available: false, note: "webhook endpoint not available (no active channel created)" };
}

/** Builds the whole environment; on failure everything already started is stopped again. */
export async function setUpEnvironment(options: {
  databaseUrl: string | undefined;
  kinds: readonly ProviderKind[];
  scenarios: readonly ScenarioName[];
  /** Daemon settings over DAEMON_SETTINGS (a scenario's compressed intervals). */
  settings?: Readonly<Record<string, string>>;
  /** The connections of a scenario that needs several (one per variant); else one, "main". */
  variants?: Partial<Record<ScenarioName, readonly string[]>>;
}): Promise<DrillEnvironment> {
  const stack: Array<() => Promise<void>> = [];
  const unwind = async () => {
    for (const step of stack.reverse()) await step().catch(() => {});
  };
  try {
    const db = await openDrillDatabase(options.databaseUrl);
    let keepDatabase = false;
    stack.push(() => db.close({ keep: keepDatabase }));
    const proxy = await startFaultProxy({ targetHostname: db.host, targetPort: db.port });
    stack.push(() => proxy.close());
    const providers = new Map<ProviderKind, DrillProvider>();
    for (const kind of options.kinds) {
      const provider = startDrillProvider(kind);
      providers.set(kind, provider);
      stack.push(() => provider.close());
    }
    const gate = startWebhookGate();
    stack.push(() => gate.close());
    const dataDir = await Deno.makeTempDir({ prefix: "calsync-drill-data-" });
    stack.push(() => Deno.remove(dataDir, { recursive: true }));
    const daemonEnv: Record<string, string> = {
      ...DAEMON_SETTINGS,
      ...options.settings,
      DATABASE_URL: proxy.url(db.roleUrl),
      CALSYNC_PUBLIC_URL: gate.url,
      CALSYNC_DATA_DIR: dataDir,
      ...Object.assign({}, ...[...providers.values()].map((p) => p.env)),
    };
    const daemon = await startDaemon(daemonEnv, DRILL_DAEMON);
    stack.push(async () => {
      await daemon.stop();
    });
    // The gate forwards to the daemon before its scheduler creates the push channels.
    gate.setTarget(daemon.url);
    await waitForScheduler(daemon, 30_000);
    // The migrations ran at the daemon's start; the audit goes in before any drill connection.
    await installAudit(db.adminSql);

    const connections: DrillConnection[] = [];
    for (const scenario of options.scenarios) {
      for (const variant of options.variants?.[scenario] ?? ["main"]) {
        for (const kind of options.kinds) {
          const provider = providers.get(kind)!;
          connections.push(await addConnection(db, provider, { scenario, variant, kind }));
        }
      }
    }
    const ids = connections.map((c) => c.connectionId);
    const synced = await waitFor(async () => {
      const [row] = await db.adminSql<{ n: number }[]>`
        select count(*)::int as n from external_calendar_connections
        where id = any(${ids}::uuid[]) and last_success_at is not null and not sync_needed`;
      return row.n === ids.length;
    }, { timeoutMs: 30_000, intervalMs: 50 });
    if (!synced) throw new Error("The daemon did not complete the first sync of every connection");
    const webhooks = await webhookAvailability(daemon, db, connections, providers);

    return {
      db,
      proxy,
      gate,
      daemon,
      providers,
      connections,
      connection(scenario, kind, variant = "main") {
        const found = connections.find((c) =>
          c.scenario === scenario && c.kind === kind && c.variant === variant
        );
        if (!found) throw new Error(`No drill connection for ${scenario}/${variant}/${kind}`);
        return found;
      },
      daemonEnv,
      webhooks,
      async teardown({ keep }) {
        keepDatabase = keep;
        await unwind();
      },
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
