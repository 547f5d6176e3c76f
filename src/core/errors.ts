/** @module Every error calsync throws: one base type with a stable `code`, `name` and `cause`. */

/** The stable code of every calsync error; log lines, tests and classification match on it. */
export type ErrorCode =
  | "CONFIG_INVALID"
  | "USAGE_INVALID"
  | "COMMAND_FAILED"
  | "DATABASE_NOT_OPEN"
  | "DATABASE_UNAVAILABLE"
  | "DEADLINE_EXCEEDED"
  | "EMBEDDED_UNAVAILABLE"
  | "EMBEDDED_FAILED"
  | "MIGRATION_FAILED"
  | "LEASE_LOST"
  | "SECRET_UNREADABLE"
  | "SYNC_FAILED"
  | "HTTP_ERROR"
  | "DATABASE_QUEUE_FULL"
  | "CONNECT_FAILED";

/** The base of every calsync error: subclasses fix `code` and `name`; messages are sentences. */
export class CalsyncError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = "CalsyncError";
  }
}

/** The environment does not describe a valid configuration. */
export class ConfigError extends CalsyncError<"CONFIG_INVALID"> {
  /** One human-readable line per invalid variable. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(
      "CONFIG_INVALID",
      `Invalid configuration:\n${problems.map((line) => `  ${line}`).join("\n")}`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** A problem with a command's input; printed on stderr with exit code 2. */
export class UsageError extends CalsyncError<"USAGE_INVALID"> {
  constructor(message: string) {
    super("USAGE_INVALID", message);
    this.name = "UsageError";
  }
}

/** A command that ran but failed for a reason the operator must fix; exit code 1. */
export class CommandError extends CalsyncError<"COMMAND_FAILED"> {
  constructor(message: string) {
    super("COMMAND_FAILED", message);
    this.name = "CommandError";
  }
}

/** The pool is not open yet (the daemon is still starting), so nothing can be recorded. */
export class DatabaseNotOpenError extends CalsyncError<"DATABASE_NOT_OPEN"> {
  constructor() {
    super("DATABASE_NOT_OPEN", "The database is not open yet");
    this.name = "DatabaseNotOpenError";
  }
}

/** The database could not be reached; the message names it without credentials. */
export class DatabaseUnavailableError extends CalsyncError<"DATABASE_UNAVAILABLE"> {
  constructor(description: string, cause: unknown) {
    super(
      "DATABASE_UNAVAILABLE",
      `Cannot reach the database at ${description}: ${causeText(cause)}`,
      { cause },
    );
    this.name = "DatabaseUnavailableError";
  }
}

function causeText(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return code && !cause.message.includes(String(code))
      ? `${cause.message} (${code})`
      : cause.message;
  }
  return String(cause);
}

/** A database call outlived its client-side deadline. */
export class DatabaseDeadlineError extends CalsyncError<"DEADLINE_EXCEEDED"> {
  constructor(message: string, options?: ErrorOptions) {
    super("DEADLINE_EXCEEDED", message, options);
    this.name = "DatabaseDeadlineError";
  }
}

/** Deadline-bound work was refused because too much already waits for the database. */
export class DatabaseQueueFullError extends CalsyncError<"DATABASE_QUEUE_FULL"> {
  constructor(what: string, maxQueued: number) {
    super(
      "DATABASE_QUEUE_FULL",
      `Cannot start ${what}: ${maxQueued} deliveries already wait for the database`,
    );
    this.name = "DatabaseQueueFullError";
  }
}

/** The embedded server is not available in this build or environment. */
export class EmbeddedDatabaseUnavailableError extends CalsyncError<"EMBEDDED_UNAVAILABLE"> {
  constructor(message: string, cause: unknown) {
    super("EMBEDDED_UNAVAILABLE", message, { cause });
    this.name = "EmbeddedDatabaseUnavailableError";
  }
}

/** The embedded server could not be set up, started or stopped. */
export class EmbeddedDatabaseError extends CalsyncError<"EMBEDDED_FAILED"> {
  constructor(message: string, options?: ErrorOptions) {
    super("EMBEDDED_FAILED", message, options);
    this.name = "EmbeddedDatabaseError";
  }
}

/** A migration problem that must stop startup (for example an edited, already-applied file). */
export class MigrationError extends CalsyncError<"MIGRATION_FAILED"> {
  constructor(message: string, options?: ErrorOptions) {
    super("MIGRATION_FAILED", message, options);
    this.name = "MigrationError";
  }
}

/** Raised inside a write transaction when this run no longer holds the connection's lease. */
export class LeaseLostError extends CalsyncError<"LEASE_LOST"> {
  constructor(connectionId: string) {
    super(
      "LEASE_LOST",
      `Lease on connection "${connectionId}" was lost; this run's writes were rolled back`,
    );
    this.name = "LeaseLostError";
  }
}

/** A stored value could not be opened (unknown key, or tampered/corrupt ciphertext). */
export class SecretBoxError extends CalsyncError<"SECRET_UNREADABLE"> {
  constructor(message: string, options?: ErrorOptions) {
    super("SECRET_UNREADABLE", message, options);
    this.name = "SecretBoxError";
  }
}

/** Why a sync failed; also the `reason` label of `calendar_sync_failures_total`. */
export type FailureKind =
  | "provider_unavailable"
  | "rate_limited"
  | "network"
  | "timeout"
  | "malformed_response"
  | "auth"
  | "reauth_required"
  | "calendar_unavailable"
  | "cursor_expired"
  | "provider_rejected"
  | "database"
  | "lease_lost"
  | "internal";

/** Details of a classified failure, as stored in `last_error`. */
export type FailureDetails = {
  kind: FailureKind;
  message: string;
  status?: number;
  providerCode?: string;
  retryAfterMs?: number;
};

/** A classified sync failure; `kind` decides the next attempt. */
export class SyncFailure extends CalsyncError<"SYNC_FAILED"> {
  readonly kind: FailureKind;
  readonly status?: number;
  readonly providerCode?: string;
  readonly retryAfterMs?: number;
  constructor(details: FailureDetails, options?: ErrorOptions) {
    super("SYNC_FAILED", details.message, options);
    this.name = "SyncFailure";
    this.kind = details.kind;
    this.status = details.status;
    this.providerCode = details.providerCode;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The `error` field of an HTTP error answer: a stable problem type callers can match on. */
export type ProblemType =
  | "not_found"
  | "method_not_allowed"
  | "payload_too_large"
  | "unsupported_media_type"
  | "unreadable_body"
  | "malformed_json"
  | "invalid_body"
  | "invalid_notification"
  | "invalid_validation_token"
  | "missing_header"
  | "invalid_header"
  | "forbidden"
  | "unavailable"
  | "malformed_request"
  | "unsupported_version"
  | "request_timeout"
  | "headers_too_large"
  | "overloaded"
  | "unauthorized"
  | "conflict"
  | "gone"
  | "validation_failed"
  | "invalid_cursor"
  | "internal_error";

/** The statuses calsync answers errors with. */
export type HttpErrorStatus =
  | 400
  | 401
  | 403
  | 404
  | 405
  | 408
  | 409
  | 410
  | 413
  | 415
  | 422
  | 429
  | 431
  | 500
  | 503;

/**
 * An error answer, thrown by a handler and turned into an `application/problem+json` body (RFC 9457
 * members plus `{ error: type, message }`, with headers such as Retry-After or Allow) by the app's
 * one `onError`. `message` never contains a secret.
 */
export class HttpError extends CalsyncError<"HTTP_ERROR"> {
  readonly status: HttpErrorStatus;
  readonly type: ProblemType;
  readonly headers: Readonly<Record<string, string>>;
  /** Further problem members (RFC 9457 extensions), such as a validation error's `issues`. */
  readonly extra: Readonly<Record<string, unknown>>;
  constructor(
    status: HttpErrorStatus,
    options: {
      type: ProblemType;
      message: string;
      headers?: Record<string, string>;
      extra?: Record<string, unknown>;
      cause?: unknown;
    },
  ) {
    super(
      "HTTP_ERROR",
      options.message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "HttpError";
    this.status = status;
    this.type = options.type;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
  }
}

/** Why a connect flow (OAuth consent) ended without an account; stable, for pages and logs. */
export type ConnectFailureReason =
  | "not_configured"
  | "unknown_provider"
  | "forged_state"
  | "replayed_state"
  | "expired_state"
  | "access_denied"
  | "provider_error"
  | "exchange_failed"
  | "id_token_invalid"
  | "no_refresh_token"
  | "wrong_account"
  | "discovery_failed";

/** A connect flow failed; nothing was stored. `message` never contains a secret. */
export class ConnectError extends CalsyncError<"CONNECT_FAILED"> {
  readonly reason: ConnectFailureReason;
  constructor(reason: ConnectFailureReason, message: string, options?: ErrorOptions) {
    super("CONNECT_FAILED", message, options);
    this.name = "ConnectError";
    this.reason = reason;
  }
}
