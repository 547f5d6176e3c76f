/** @module What channel maintenance needs, built from the config. */
import type { Config } from "../config/config.ts";
import type { Sql } from "../storage/client.ts";
import type { ClaimedConnection } from "../storage/connections.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { AccessTokens } from "../providers/access_tokens.ts";
import type { FetchFn } from "../providers/provider_fetch.ts";
import { createSyncDeps } from "../daemon/wiring.ts";
import {
  GOOGLE_CHANNEL_TTL_MS,
  GOOGLE_OVERLAP_MS,
  GRAPH_SUBSCRIPTION_TTL_MS,
} from "./channel_timing.ts";

/** Dependencies of channel creation, renewal and stopping; tests pass their own. */
export type ChannelDeps = {
  sql: Sql;
  metrics: Metrics;
  tokens: AccessTokens;
  /** Where providers reach our webhooks; null turns channel creation and renewal off. */
  publicUrl: string | null;
  googleBaseUrl: string;
  graphBaseUrl: string;
  timeoutMs: number;
  /** How long a maintenance pass holds a connection's lease. */
  leaseMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  allowlist: readonly string[] | null;
  replicaId: string;
  googleTtlMs: number;
  graphTtlMs: number;
  overlapMs: number;
  /** Connections worked on per claim. */
  batchSize: number;
  fetch?: FetchFn;
  random?: () => number;
};

/** One connection's channel work: the deps, the connection (its lease held) and the signal. */
export type ChannelWork = { deps: ChannelDeps; connection: ClaimedConnection; signal: AbortSignal };

/** Builds channel deps; `tokens` should be the sync engine's cache so both share access tokens. */
export function createChannelDeps(
  config: Config,
  sql: Sql,
  metrics: Metrics,
  options: { tokens?: AccessTokens; fetch?: FetchFn; replicaId?: string } = {},
): ChannelDeps {
  const timeoutMs = config.SYNC_HTTP_TIMEOUT_MS;
  return {
    sql,
    metrics,
    tokens: options.tokens ?? createSyncDeps(config, sql, metrics, { fetch: options.fetch }).tokens,
    publicUrl: config.CALSYNC_PUBLIC_URL ?? null,
    googleBaseUrl: config.GOOGLE_API_BASE_URL,
    graphBaseUrl: config.MICROSOFT_GRAPH_BASE_URL,
    timeoutMs,
    // A pass makes at most a token refresh, a create or renewal, and two stops per connection.
    leaseMs: Math.max(config.SYNC_LEASE_MS, 5 * timeoutMs + 10_000),
    backoffBaseMs: config.SYNC_BACKOFF_BASE_MS,
    backoffMaxMs: config.SYNC_BACKOFF_MAX_MS,
    allowlist: config.SYNC_PROVIDER_ALLOWLIST,
    replicaId: options.replicaId ?? `${Deno.hostname()}:${Deno.pid}`,
    googleTtlMs: GOOGLE_CHANNEL_TTL_MS,
    graphTtlMs: GRAPH_SUBSCRIPTION_TTL_MS,
    overlapMs: GOOGLE_OVERLAP_MS,
    batchSize: 8,
    fetch: options.fetch,
  };
}
