/** @module What one sync run carries from chunk to chunk: reconciliation, held deletions, drift. */

/** Mirror rows a reconciliation found wrong, by kind (the drift metric's `kind` label). */
export type Drift = { missing: string[]; extra: string[]; changed: string[] };

/** The run's state; written by each chunk's transaction, reported after it commits. */
export type SyncRun = {
  /** A reconciliation: the run lists everything and compares it with the mirror. */
  reconciling: boolean;
  /** When the run began (ms); listed events the provider changed later are news, not drift. */
  startedAt: number;
  /** Changes the provider reported so far. */
  changes: number;
  /** Set once a chunk held its deletions; every later deletion of the run is held too. */
  held: { count: number; reason: string } | null;
  /** Held deletions not reported yet (the chunk that held them has committed). */
  newlyHeld: number;
  /** Drift of committed chunks not reported yet. */
  drift: Drift;
  /** The completing write found that the poll caught changes no notification announced. */
  pushMissed: boolean;
};

/** A fresh run. */
export function createSyncRun(reconciling: boolean, startedAt: number): SyncRun {
  return {
    reconciling,
    startedAt,
    changes: 0,
    held: null,
    newlyHeld: 0,
    drift: { missing: [], extra: [], changed: [] },
    pushMissed: false,
  };
}

/** How many repairs `drift` holds. */
export function driftCount(drift: Drift): number {
  return drift.missing.length + drift.extra.length + drift.changed.length;
}
