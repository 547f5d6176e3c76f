/** @module What a sync run needs and how it ends. */
import type { ProviderKind } from "../core/provider_kind.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { AccessTokens } from "../providers/access_tokens.ts";
import type { ProviderAdapter } from "../providers/adapter.ts";
import type { Sql } from "../storage/client.ts";
import type { ClaimedConnection, Completion } from "../storage/connections.ts";
import type { GroupCommit } from "../storage/group_commit.ts";
import type { WindowSettings } from "./cursor.ts";
import type { GuardSettings } from "./deletion_guard.ts";
import type { PollSettings } from "./poll_schedule.ts";

/** What a sync run needs; all of it passed in so tests use real databases and fake providers. */
export type SyncDeps = {
  sql: Sql;
  adapters: Record<ProviderKind, ProviderAdapter>;
  tokens: AccessTokens<ClaimedConnection>;
  metrics: Metrics;
  leaseMs: number;
  chunkEvents: number;
  backoffBaseMs: number;
  /** How soon a sync that failed on the database runs again (the lease is handed back). */
  dbRetryBaseMs: number;
  backoffMaxMs: number;
  /** Client-side deadline for one write transaction. */
  dbDeadlineMs: number;
  random?: () => number;
  /** SYNC_POLL_INTERVAL, SYNC_POLL_INTERVAL_WITH_PUSH, SYNC_RECONCILE_INTERVAL. */
  poll: PollSettings;
  /** SYNC_DELETE_GUARD_PERCENT and SYNC_DELETE_GUARD_MIN. */
  deleteGuard: GuardSettings;
  /** SYNC_MAX_REJECTIONS: consecutive provider_rejected failures before the cursor is dropped. */
  maxRejections: number;
  /** The rolling window every round mirrors (`SYNC_WINDOW_PAST_DAYS`/`_FUTURE_DAYS`). */
  window: WindowSettings;
  /**
   * The provider's circuit breaker (src/lanes/provider_gate.ts): told every run's outcome; a
   * failure it answers "hold" for leaves the connection's error count and backoff alone.
   */
  providerGate?: {
    settle(connection: ClaimedConnection, kind: string): Promise<"count" | "hold">;
  };
  /**
   * Completions of runs that write nothing else, batched across concurrent runs (one statement
   * for the runs that finish together); null where the lease was lost. Without it each run
   * completes in a statement of its own.
   */
  completions?: GroupCommit<Completion, { syncNeeded: boolean } | null>;
  /**
   * SYNC_LISTING_CONCURRENCY: runs of this replica that list a whole calendar at once (a full
   * sync, a moved window's new round, a reconciliation), under the key "listing". Each holds
   * a page of up to 2,500 events; the lanes' many incremental runs hold almost nothing.
   */
  listingSlots?: { run<T>(key: string, task: () => Promise<T>): Promise<T> };
  /** The clock of windows, rounds and decisions (drift cut-off, push quiet period); injected. */
  now?: () => number;
};

/** How a run ended. */
export type SyncOutcome =
  | { outcome: "success"; upserted: number; deleted: number; syncNeeded: boolean }
  | { outcome: "failure"; kind: string; backoffUntil: Date | null }
  | { outcome: "cancelled" };
