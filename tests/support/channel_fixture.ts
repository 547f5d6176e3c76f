/**
 * @module Channel maintenance wired to a fake provider, a scratch database and the webhook
 * endpoints the fake pushes to, for the Google channel and Graph subscription tests.
 */
import type { ChannelDeps } from "../../src/channels/channel_deps.ts";
import { type Config, loadConfig } from "../../src/config/config.ts";
import type { ProviderKind } from "../../src/core/provider_kind.ts";
import { createChannelDeps } from "../../src/daemon/wiring.ts";
import { runChannelMaintenance } from "../../src/maintenance/channel_pass.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { createMigratedDatabase, type MigratedDatabase } from "../../testkit/scratch_database.ts";
import { captureLogs } from "./log_capture.ts";
import { serveWebhooks, type WebhookServer } from "./webhook_server.ts";

/** What the fixture needs of a fake provider. */
export type ChannelFake = AsyncDisposable & {
  baseUrl: string;
  tokenUrl: string;
  addCalendar(calendarId: string): void;
};

/** A fake provider whose pushes reach our webhook endpoints, and channel maintenance for it. */
export type ChannelFixture<F extends ChannelFake> = {
  fake: F;
  db: MigratedDatabase;
  server: WebhookServer;
  config: Config;
  deps: ChannelDeps;
  /** Lines logged at info and above since the fixture was built. */
  logLines: string[];
  /** Adds `calendar` at the fake and a connection to it; returns the connection id. */
  connection(calendar: string): Promise<string>;
  /** Runs one channel maintenance pass, with `overrides` of the fixture's deps. */
  pass(overrides?: Partial<ChannelDeps>): Promise<{ connections: number }>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** Builds a ChannelFixture; `env` names the fake's URLs and `publicUrl` our server's. */
export async function channelFixture<F extends ChannelFake>(
  kind: ProviderKind,
  options: {
    fake: () => F;
    env: (fake: F) => Record<string, string>;
    publicUrl: (serverUrl: string) => string;
    refreshToken: string;
    deps?: Partial<ChannelDeps>;
    /** CALSYNC_ENCRYPTION_KEY: channel secrets are then sealed at rest. */
    encryptionKey?: string;
  },
): Promise<ChannelFixture<F>> {
  await using stack = new AsyncDisposableStack();
  const logs = stack.use(await captureLogs("info"));
  const db = stack.use(await createMigratedDatabase(`channels_${kind}`));
  const fake = stack.use(options.fake());
  // The webhooks open secrets with the box of the config built below (it needs the server's URL).
  const built: { deps?: ChannelDeps } = {};
  const server = stack.use(
    await serveWebhooks(() => db.sql, { openSecret: (stored) => built.deps!.secrets.open(stored) }),
  );
  const config = loadConfig({
    DATABASE_URL: db.url,
    CALSYNC_PUBLIC_URL: options.publicUrl(server.url),
    ...options.env(fake),
    SYNC_HTTP_TIMEOUT_MS: "2000",
    SYNC_BACKOFF_BASE_MS: "60000",
    SYNC_BACKOFF_MAX_MS: "600000",
    ...(options.encryptionKey ? { CALSYNC_ENCRYPTION_KEY: options.encryptionKey } : {}),
  });
  const deps: ChannelDeps = built.deps = {
    ...createChannelDeps(config, db.sql, server.metrics, { replicaId: "test" }),
    ...options.deps,
  };
  const provider = await insertProvider(db.sql, { kind, name: kind, allowlisted: true });
  const signal = new AbortController().signal;
  const owned = stack.move();
  return {
    fake,
    db,
    server,
    config,
    deps,
    logLines: logs.lines,
    async connection(calendar) {
      fake.addCalendar(calendar);
      const { id } = await insertConnection(db.sql, {
        providerId: provider.id,
        externalCalendarId: calendar,
        refreshToken: options.refreshToken,
        accountLabel: null,
      });
      return id;
    },
    pass: (overrides) => runChannelMaintenance({ ...deps, ...overrides }, signal),
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}
