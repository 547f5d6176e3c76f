/** @module The typed failure every sync problem is turned into before it is recorded. */

// Defined with every other error in core; imported from here by providers, channels and sync.
export { type FailureDetails, type FailureKind, SyncFailure } from "../core/errors.ts";
