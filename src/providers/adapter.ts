/** @module The interface every provider adapter implements, and the page it returns. */
import type { MirroredEvent, MirroredSeries } from "../core/mirrored_event.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import type { SyncWindow } from "../core/sync_window.ts";

/**
 * One change to apply to the mirror. A delete names an occurrence, a single event or a series:
 * deleting a series id also removes its occurrences and its master (Google reports a deleted
 * series by its id, with only some of its instances).
 */
export type EventChange =
  | { op: "upsert"; event: MirroredEvent }
  | { op: "delete"; externalEventId: string };

/**
 * One page of changes. `position` resumes right after this page; `done` means it is the new
 * sync cursor (Google sync token, Graph delta link) rather than a page continuation. `series`
 * holds the masters of the series whose occurrences are on this page.
 */
export type ChangePage = {
  changes: EventChange[];
  series: MirroredSeries[];
  position: unknown;
  done: boolean;
};

/** Everything an adapter needs to fetch one page. */
export type FetchPageInput = {
  externalCalendarId: string;
  /** The adapter's own resume position; null starts a full sync. */
  position: unknown;
  /** The round's window: a full sync asks for it, and anything outside it becomes a delete. */
  window: SyncWindow;
  /** Series masters this run already fetched (null: gone), so each is fetched once per run. */
  seriesSeen: Map<string, unknown>;
  accessToken: string;
  signal: AbortSignal;
};

/** A provider adapter: fetches pages of changes; knows nothing of the database. */
export type ProviderAdapter = {
  kind: ProviderKind;
  fetchPage(input: FetchPageInput): Promise<ChangePage>;
};
