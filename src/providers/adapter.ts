/** @module The interface every provider adapter implements, and the page it returns. */
import type { MirroredEvent } from "../core/mirrored_event.ts";
import type { ProviderKind } from "../core/provider_kind.ts";

/** One change to apply to the mirror. */
export type EventChange =
  | { op: "upsert"; event: MirroredEvent }
  | { op: "delete"; externalEventId: string };

/**
 * One page of changes. `position` resumes right after this page; `done` means it is the new
 * sync cursor (Google sync token, Graph delta link) rather than a page continuation.
 */
export type ChangePage = { changes: EventChange[]; position: unknown; done: boolean };

/** Everything an adapter needs to fetch one page. */
export type FetchPageInput = {
  externalCalendarId: string;
  /** The adapter's own resume position; null starts a full sync. */
  position: unknown;
  accessToken: string;
  signal: AbortSignal;
};

/** A provider adapter: fetches pages of changes; knows nothing of the database. */
export type ProviderAdapter = {
  kind: ProviderKind;
  fetchPage(input: FetchPageInput): Promise<ChangePage>;
};
