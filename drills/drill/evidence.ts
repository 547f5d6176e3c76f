/** @module What the drill collects from the daemon, the database and the fakes, for the checks. */

/** A provider the drill covers. */
export type ProviderKind = "google" | "microsoft";

/** A scenario of the drill document. */
export type ScenarioName =
  | "api"
  | "database"
  | "webhook"
  | "freshness"
  | "outage"
  | "subscriber";

/** One JSON log line of the daemon, parsed from its stdout. */
export type LogLine = Record<string, unknown>;

/** The columns of a connection row the drill reads (verification columns and a few more). */
export type ConnectionState = {
  errorCount: number;
  lastError: unknown;
  backoffUntil: Date | null;
  syncNeeded: boolean;
  lastSuccessAt: Date | null;
  syncCursor: unknown;
  status: string;
  leaseOwner: string | null;
};

/** Every stored column of a connection's events as text, one line per event, ordered by id. */
export type EventSnapshot = readonly string[];

/**
 * One attempt of a provider to deliver a push notification; `error` is a refused connection.
 * `ids` name the delivery as the webhook handler's log line does (see `deliveryIdsOfLine`).
 */
export type DeliveryAttempt = {
  attempt: number;
  status: number | "error" | "timeout";
  at: number;
  ids?: readonly string[];
};

/** One request the provider received for the calendar: when (ms, drill clock) and its answer. */
export type ProviderRequest = { at: number; status: number };

/** One sync run as the audit trail saw it: its claim and the write that released the lease. */
export type SyncRun = {
  /** The claiming transaction's time (database clock, ms). */
  claimedAt: number;
  /** Sync requests committed after the previous run ended (or the mark) and before this claim. */
  requestsBefore: number;
  /** The state the run left and that transaction's time; null while it still holds the lease. */
  end: { at: number; state: ConnectionState } | null;
};

/** Evidence of one external API outage (503, or 429 with Retry-After) for one connection. */
export type ApiOutageEvidence = {
  injectedStatus: number;
  /** The failure kind the architecture's table gives the injected answer. */
  expectedKind: string;
  retryAfterMs: number | null;
  /** How many event requests the fake was told to fail in a row. */
  injectedFailures: number;
  /** The daemon's configured backoff, the jitter bounds are computed from. */
  backoff: { baseMs: number; maxMs: number };
  connectionId: string;
  /** `last_success_at` and `error_count` before the outage: a run that leaves the former failed. */
  successBefore: number | null;
  errorsBefore: number;
  /** Sync requests committed after the mark and before the first run (the one trigger). */
  triggers: number;
  /** Every run since the trigger, oldest first, through the first that succeeded. */
  runs: readonly SyncRun[];
  /** The daemon's error lines for the connection since the trigger, in order. */
  failureLogs: readonly LogLine[];
  /** Event requests for the calendar since the trigger. */
  providerRequests: readonly ProviderRequest[];
  failuresBefore: number;
  failuresAfter: number;
  eventRows: number;
  /** Event rows written between the trigger and the claim of the first successful run. */
  eventWrites: number;
};

/** Evidence of a recovery: the sync after the fault was removed, and the state it left. */
export type RecoveryEvidence = {
  /** The daemon's success log line for the connection after the restore, if any. */
  successLog: LogLine | null;
  row: ConnectionState | null;
  /** `id|title|etag` of the mirrored events, and the same of the provider's live events. */
  mirror: readonly string[];
  provider: readonly string[];
};

/** What an operator command printed and returned. */
export type CommandResult = { code: number; stderr: string; durationMs: number };

/** Evidence of one database failure (cut, cut mid-write, exhausted slots) for one connection. */
export type DatabaseOutageEvidence = {
  connectionId: string;
  /**
   * Error lines with `kind: "database"` of the operation under test: the webhook handler's own
   * lines (category `calsync.webhooks`, this provider), or the sync's own line for its connection.
   */
  databaseLogs: readonly LogLine[];
  /**
   * When the operation under test is a webhook delivery: the ids of the deliveries made during
   * the outage; a handler line counts only when it names one of them. Null for a sync.
   */
  deliveryIds: readonly string[] | null;
  /** Null when the daemon has no webhook endpoint; then `webhookNote` says why. */
  webhookAttempts: readonly DeliveryAttempt[] | null;
  webhookNote: string;
  /** How long the daemon took to answer each webhook delivery during the outage (ms). */
  webhookLatenciesMs: readonly number[];
  failuresBefore: number;
  failuresAfter: number;
  eventsBefore: EventSnapshot;
  eventsAfter: EventSnapshot;
  /** Mirrored rows carrying the marker of the change that must not have committed. */
  markerRows: number;
  rowBefore: ConnectionState | null;
  rowAfter: ConnectionState | null;
  daemonAlive: boolean;
  healthStatus: number | null;
  /** `calsync sync --connection` run by the drill during the outage, if it ran one. */
  command: CommandResult | null;
};

/** Evidence of a webhook outage and the provider's redelivery, for one connection. */
export type WebhookOutageEvidence = {
  /** Null when the daemon has no webhook endpoint; then `note` says why. */
  attempts: readonly DeliveryAttempt[] | null;
  note: string;
  /** Dedupe keys recorded for the connection since the notification. */
  keys: readonly string[];
  /** Deliveries of the notification the daemon answered with 2xx. */
  acknowledged: number;
  /** Successful syncs of the connection, and provider API requests for it, after the notification. */
  syncs: number;
  apiRequests: number;
  duplicate: {
    status: number | "error" | null;
    newKeys: number;
    syncs: number;
    apiRequests: number;
  } | null;
};
