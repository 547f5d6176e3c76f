/** @module A served connect flow (real routes, real database) against the fake providers. */
import { loadConfig } from "../../src/config/config.ts";
import { createApp } from "../../src/http/app.ts";
import { createMetrics, type Metrics } from "../../src/metrics/metrics.ts";
import { mountConnectFlow } from "../../src/api/connect_routes.ts";
import { mountAdminApi } from "../../src/api/admin_api.ts";
import { adminApiModules } from "../../src/daemon/api_modules.ts";
import { CALSYNC_VERSION } from "../../src/core/version.ts";
import { createConnectDeps } from "../../src/daemon/connect_wiring.ts";
import type { ConnectDeps } from "../../src/accounts/connect_deps.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { type FakeMicrosoft, startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { createMigratedDatabase, type MigratedDatabase } from "../../testkit/scratch_database.ts";
import { serveApp, type ServedApp } from "./serve_app.ts";

/** The admin token of the fixture's daemon. */
export const ADMIN_TOKEN = "connect-admin-token-0123456789abcdef";

/** Environment pointing both providers' OAuth and APIs at the fakes. */
export function fakeProviderEnv(google: FakeGoogle, microsoft: FakeMicrosoft) {
  return {
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    GOOGLE_AUTH_URL: google.authUrl,
    GOOGLE_CLIENT_ID: "google-client.apps.googleusercontent.com",
    GOOGLE_CLIENT_SECRET: "google-secret",
    MICROSOFT_GRAPH_BASE_URL: microsoft.baseUrl,
    MICROSOFT_TOKEN_URL: microsoft.tokenUrl,
    MICROSOFT_AUTH_URL: microsoft.authUrl,
    MICROSOFT_CLIENT_ID: "5f0c1a8e-0000-4000-8000-00000000c11e",
    MICROSOFT_CLIENT_SECRET: "microsoft-secret",
  };
}

/** Database, fakes with one user each, and the connect routes served on loopback. */
export type ConnectFixture = {
  db: MigratedDatabase;
  google: FakeGoogle;
  microsoft: FakeMicrosoft;
  served: ServedApp;
  deps: ConnectDeps;
  metrics: Metrics;
  env: Record<string, string>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** Starts everything; providers are named `google` and `outlook`. */
export async function connectFixture(env: Record<string, string> = {}): Promise<ConnectFixture> {
  const db = await createMigratedDatabase("connect");
  const google = startFakeGoogle({
    clientId: "google-client.apps.googleusercontent.com",
    clientSecret: "google-secret",
  });
  const microsoft = startFakeMicrosoft({
    clientId: "5f0c1a8e-0000-4000-8000-00000000c11e",
    clientSecret: "microsoft-secret",
  });
  await insertProvider(db.sql, { kind: "google", name: "google", allowlisted: true });
  await insertProvider(db.sql, { kind: "microsoft", name: "outlook", allowlisted: true });
  const metrics = createMetrics();
  // The redirect URIs name the port, so it is chosen before the config is built.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const fullEnv = {
    ...fakeProviderEnv(google, microsoft),
    CALSYNC_PUBLIC_URL: `http://127.0.0.1:${port}`,
    CALSYNC_ADMIN_TOKEN: ADMIN_TOKEN,
    SYNC_HTTP_TIMEOUT_MS: "5000",
    ...env,
  };
  const config = loadConfig(fullEnv);
  const deps = createConnectDeps(config, db.sql, metrics);
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 65_536,
    routes: (app) => {
      mountAdminApi(app, {
        token: ADMIN_TOKEN,
        modules: adminApiModules({ config, metrics, sql: () => db.sql }),
        metrics,
        version: CALSYNC_VERSION,
      });
      mountConnectFlow(app, { adminToken: ADMIN_TOKEN, metrics, connect: () => deps });
    },
  });
  const served = await serveApp(app, port);
  return {
    db,
    google,
    microsoft,
    served,
    deps,
    metrics,
    env: fullEnv,
    async [Symbol.asyncDispose]() {
      await served.close();
      await google.close();
      await microsoft.close();
      await db.close();
    },
  };
}

/** One hop of a followed redirect chain. */
export type Hop = { url: string; status: number; location: string | null };

/**
 * Follows redirects by hand, as a browser would (a plain HTTP client; each hop recorded), and
 * returns the chain and the last answer's text. `first` may carry headers (the admin token).
 */
export async function followRedirects(
  url: string,
  headers: Record<string, string> = {},
  rewrite: (location: string) => string = (location) => location,
): Promise<{ hops: Hop[]; status: number; body: string; contentType: string | null }> {
  const hops: Hop[] = [];
  let next = url;
  let first = true;
  for (let i = 0; i < 6; i++) {
    const response = await fetch(next, { redirect: "manual", headers: first ? headers : {} });
    first = false;
    const location = response.headers.get("location");
    hops.push({ url: next, status: response.status, location });
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      next = rewrite(new URL(location, next).toString());
      continue;
    }
    return {
      hops,
      status: response.status,
      body: await response.text(),
      contentType: response.headers.get("content-type"),
    };
  }
  throw new Error(`Too many redirects from ${url}`);
}

/** Counts of what a flow may have stored. */
export async function storedCounts(sql: MigratedDatabase["sql"]) {
  const [row] = await sql<{ accounts: number; connections: number }[]>`
    select (select count(*) from calendar_accounts)::int as accounts,
      (select count(*) from external_calendar_connections)::int as connections`;
  return row;
}
