/** @module The typed failure every sync problem is turned into before it is recorded. */

/** Why a sync failed; also the `reason` label of `calendar_sync_failures_total`. */
export type FailureKind =
  | "provider_unavailable"
  | "rate_limited"
  | "network"
  | "timeout"
  | "malformed_response"
  | "auth"
  | "reauth_required"
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
export class SyncFailure extends Error {
  readonly kind: FailureKind;
  readonly status?: number;
  readonly providerCode?: string;
  readonly retryAfterMs?: number;
  constructor(details: FailureDetails, options?: ErrorOptions) {
    super(details.message, options);
    this.name = "SyncFailure";
    this.kind = details.kind;
    this.status = details.status;
    this.providerCode = details.providerCode;
    this.retryAfterMs = details.retryAfterMs;
  }
}
