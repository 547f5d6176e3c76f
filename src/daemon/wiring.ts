/** @module Builds the sync engine's and channel work's dependencies from the config. */
import type { ChannelDeps } from "../channels/channel_deps.ts";
import {
  GOOGLE_CHANNEL_TTL_MS,
  GOOGLE_OVERLAP_MS,
  GRAPH_SUBSCRIPTION_TTL_MS,
} from "../channels/channel_timing.ts";
import type { Config } from "../config/config.ts";
import { createSecretBox, parseKeyList, type SecretBox } from "../crypto/secret_box.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import {
  type ClaimedConnection,
  completeSyncs,
  type Completion,
  storeRefreshToken,
} from "../storage/connections.ts";
import { createGroupCommit } from "../storage/group_commit.ts";
import { keyedSlots } from "../lanes/mailbox_slots.ts";
import { storeAccountRefreshToken } from "../storage/accounts.ts";
import { learnAccountIdentity } from "../accounts/account_identity.ts";
import { oauthEndpointsFromConfig } from "../accounts/oauth_endpoints.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { type AccessTokens, createAccessTokens } from "../providers/access_tokens.ts";
import { createGoogleAdapter } from "../providers/google.ts";
import type { FetchFn } from "../providers/provider_fetch.ts";
import { createMicrosoftAdapter } from "../providers/microsoft.ts";
import type { SyncDeps } from "../sync/run_sync.ts";
import type { ProviderKind } from "../core/provider_kind.ts";

/** The box that seals refresh tokens with CALSYNC_ENCRYPTION_KEY (plaintext when unset). */
export function secretBoxFromConfig(config: Config): SecretBox {
  const keys = config.CALSYNC_ENCRYPTION_KEY === undefined
    ? []
    : parseKeyList(config.CALSYNC_ENCRYPTION_KEY);
  // loadConfig already rejected unreadable keys; this only narrows the type.
  return createSecretBox(typeof keys === "string" ? [] : keys);
}

/** The client-side deadline of a database step: the server's statement timeout plus slack. */
export function databaseDeadlineMs(config: Config): number {
  return config.DB_STATEMENT_TIMEOUT_MS + 5_000;
}

// At most the runs in flight finish together; beyond 64 one statement's row locks would last long.
const COMPLETION_BATCH = 64;

/** Wires adapters and OAuth clients for both providers from the config. */
export function createSyncDeps(
  config: Config,
  sql: Sql,
  metrics: Metrics,
  options: {
    fetch?: FetchFn;
    now?: () => number;
    /** Wraps each adapter's fetch (the quota meter); token requests are not metered. */
    meter?: (kind: ProviderKind, fetch: FetchFn) => FetchFn;
  } = {},
): SyncDeps {
  const timeoutMs = config.SYNC_HTTP_TIMEOUT_MS;
  const adapterFetch = (kind: ProviderKind) =>
    options.meter ? options.meter(kind, options.fetch ?? fetch) : options.fetch;
  return {
    sql,
    metrics,
    listingSlots: keyedSlots(config.SYNC_LISTING_CONCURRENCY),
    // Its own deadline: a batch stuck on a half-open socket must not hold back every later one.
    completions: createGroupCommit(
      (items: Completion[]) =>
        withDeadline(completeSyncs(sql, items), databaseDeadlineMs(config), "Sync completion"),
      {
        maxBatch: COMPLETION_BATCH,
        onBatch: (size) =>
          metrics.databaseBatchSize.observe({ statement: "sync_completions" }, size),
      },
    ),
    adapters: {
      google: createGoogleAdapter({
        baseUrl: config.GOOGLE_API_BASE_URL,
        timeoutMs,
        fetch: adapterFetch("google"),
      }),
      microsoft: createMicrosoftAdapter({
        baseUrl: config.MICROSOFT_GRAPH_BASE_URL,
        timeoutMs,
        fetch: adapterFetch("microsoft"),
      }),
    },
    tokens: createAccessTokens<ClaimedConnection>({
      storeRotated: (connection, sealed) =>
        connection.accountId
          ? storeAccountRefreshToken(sql, {
            accountId: connection.accountId,
            connectionId: connection.id,
            leaseOwner: connection.leaseOwner,
          }, sealed)
          : storeRefreshToken(sql, connection, sealed),
      // An account moved from v1 learns who it is from the first refresh that names it.
      onIdToken: (connection, idToken) =>
        connection.accountId
          ? learnAccountIdentity(sql, oauthEndpointsFromConfig(config), {
            accountId: connection.accountId,
            kind: connection.providerKind,
            idToken,
          })
          : Promise.resolve(),
      secrets: secretBoxFromConfig(config),
      timeoutMs,
      fetch: options.fetch,
      clients: {
        google: {
          provider: "google",
          tokenUrl: config.GOOGLE_TOKEN_URL,
          clientId: config.GOOGLE_CLIENT_ID,
          clientSecret: config.GOOGLE_CLIENT_SECRET,
        },
        microsoft: {
          provider: "microsoft",
          tokenUrl: config.MICROSOFT_TOKEN_URL,
          clientId: config.MICROSOFT_CLIENT_ID,
          clientSecret: config.MICROSOFT_CLIENT_SECRET,
          scope: "offline_access https://graph.microsoft.com/Calendars.Read",
        },
      },
    }),
    leaseMs: config.SYNC_LEASE_MS,
    window: { pastDays: config.SYNC_WINDOW_PAST_DAYS, futureDays: config.SYNC_WINDOW_FUTURE_DAYS },
    now: options.now,
    chunkEvents: config.SYNC_CHUNK_EVENTS,
    backoffBaseMs: config.SYNC_BACKOFF_BASE_MS,
    backoffMaxMs: config.SYNC_BACKOFF_MAX_MS,
    dbDeadlineMs: databaseDeadlineMs(config),
    dbRetryBaseMs: config.DB_RETRY_BASE_MS,
    poll: {
      pollIntervalMs: config.SYNC_POLL_INTERVAL,
      pollIntervalWithPushMs: config.SYNC_POLL_INTERVAL_WITH_PUSH,
      reconcileIntervalMs: config.SYNC_RECONCILE_INTERVAL,
    },
    deleteGuard: { percent: config.SYNC_DELETE_GUARD_PERCENT, min: config.SYNC_DELETE_GUARD_MIN },
    maxRejections: config.SYNC_MAX_REJECTIONS,
  };
}

/** Builds channel deps; `tokens` should be the sync engine's cache so both share access tokens. */
export function createChannelDeps(
  config: Config,
  sql: Sql,
  metrics: Metrics,
  options: {
    tokens?: AccessTokens<ClaimedConnection>;
    fetch?: FetchFn;
    replicaId?: string;
    /** The engine's quota meter and breaker, shared with its syncs. */
    meter?: ChannelDeps["meter"];
    gate?: ChannelDeps["gate"];
  } = {},
): ChannelDeps {
  const timeoutMs = config.SYNC_HTTP_TIMEOUT_MS;
  return {
    sql,
    metrics,
    tokens: options.tokens ?? createSyncDeps(config, sql, metrics, { fetch: options.fetch }).tokens,
    secrets: secretBoxFromConfig(config),
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
    meter: options.meter,
    gate: options.gate,
  };
}
