/** @module What channel work needs; `src/daemon/wiring.ts` builds it from the config. */
import type { Sql } from "../storage/client.ts";
import type { ClaimedConnection } from "../storage/connections.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { AccessTokens } from "../providers/access_tokens.ts";
import type { FetchFn } from "../providers/provider_fetch.ts";
import type { SecretBox } from "../crypto/secret_box.ts";
import type { ProviderKind } from "../core/provider_kind.ts";

/**
 * The provider's circuit breaker (src/lanes/provider_gate.ts), told the outcome of every channel
 * call as it is of every sync: a failure it answers "hold" for is the provider's outage, so the
 * channel row keeps its error count and backoff (the claim skips the provider until it closes).
 */
export type ChannelGate = {
  settle(
    connection: { id: string; providerKind: ProviderKind },
    kind: string,
  ): Promise<"count" | "hold">;
};

/** Dependencies of channel creation, renewal and stopping; tests pass their own. */
export type ChannelDeps = {
  sql: Sql;
  metrics: Metrics;
  tokens: AccessTokens<ClaimedConnection>;
  /** Seals channel tokens and Graph clientStates at rest (CALSYNC_ENCRYPTION_KEY). */
  secrets: SecretBox;
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
  /** Wraps the fetch of a provider's channel calls (the quota meter, as for sync requests). */
  meter?: (kind: ProviderKind, fetch: FetchFn) => FetchFn;
  gate?: ChannelGate;
  random?: () => number;
};

/** One connection's channel work: the deps, the connection (its lease held) and the signal. */
export type ChannelWork = { deps: ChannelDeps; connection: ClaimedConnection; signal: AbortSignal };
