/** @module Builds the connect flow's dependencies from the config (daemon and CLI). */
import type { ConnectDeps } from "../accounts/connect_deps.ts";
import { oauthEndpointsFromConfig } from "../accounts/oauth_endpoints.ts";
import type { Config } from "../config/config.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { FetchFn } from "../providers/provider_fetch.ts";
import type { Sql } from "../storage/client.ts";
import { secretBoxFromConfig } from "./wiring.ts";

/** The connect flow's dependencies on `sql`. */
export function createConnectDeps(
  config: Config,
  sql: Sql,
  metrics: Metrics,
  options: { fetch?: FetchFn; now?: () => number } = {},
): ConnectDeps {
  return {
    sql,
    metrics,
    secrets: secretBoxFromConfig(config),
    endpoints: oauthEndpointsFromConfig(config),
    publicUrl: config.CALSYNC_PUBLIC_URL ?? null,
    stateTtlMs: config.CALSYNC_CONNECT_STATE_TTL,
    defaultCalendars: config.CALSYNC_CONNECT_CALENDARS,
    googleBaseUrl: config.GOOGLE_API_BASE_URL,
    graphBaseUrl: config.MICROSOFT_GRAPH_BASE_URL,
    timeoutMs: config.SYNC_HTTP_TIMEOUT_MS,
    fetch: options.fetch,
    now: options.now,
  };
}

/** The connect deps for the live pool, built once it exists; null while there is none. */
export function connectDepsOnDemand(
  config: Config,
  sql: () => Sql | null,
  metrics: Metrics,
  options: { fetch?: FetchFn } = {},
): () => ConnectDeps | null {
  let built: { sql: Sql; deps: ConnectDeps } | null = null;
  return () => {
    const pool = sql();
    if (pool === null) return null;
    if (built?.sql !== pool) {
      built = { sql: pool, deps: createConnectDeps(config, pool, metrics, options) };
    }
    return built.deps;
  };
}
