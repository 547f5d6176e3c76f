/** @module What the drill collects from the daemon, the database and the fakes, for the checks. */

/** A provider the drill covers. */
export type ProviderKind = "google" | "microsoft";

/** A scenario of the drill document. */
export type ScenarioName = "api" | "database" | "webhook";

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

/** One attempt of a provider to deliver a push notification; `error` is a refused connection. */
export type DeliveryAttempt = { attempt: number; status: number | "error" | "timeout"; at: number };

/** Evidence of one external API outage (503, or 429 with Retry-After) for one connection. */
export type ApiOutageEvidence = {
  injectedStatus: number;
  /** The failure kind the architecture's table gives the injected answer. */
  expectedKind: string;
  retryAfterMs: number | null;
  connectionId: string;
  failureLog: LogLine | null;
  /** When the provider received the request it failed (ms since epoch); null if none arrived. */
  failedAt: number | null;
  row: ConnectionState | null;
  /** The database clock when `row` was read (ms since epoch). */
  readAt: number;
  failuresBefore: number;
  failuresAfter: number;
  eventsBefore: EventSnapshot;
  eventsAfter: EventSnapshot;
  /** When the provider received each API request for this calendar after the failure. */
  retryRequestTimes: readonly number[];
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
  /** Error lines with `kind: "database"` the daemon logged while the database was failing. */
  databaseLogs: readonly LogLine[];
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
