/** @module One event as calsync mirrors it: what adapters produce and storage writes. */

/** One event as calsync mirrors it, independent of the provider. */
export type MirroredEvent = {
  externalEventId: string;
  etag: string | null;
  status: string;
  title: string | null;
  startsAt: string | null;
  endsAt: string | null;
  allDay: boolean;
  providerUpdatedAt: string | null;
  raw: unknown;
};
