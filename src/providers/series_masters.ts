/** @module Fetches each series master once per sync run, a few at a time; deleted ones skip. */
import type { MirroredSeries } from "../core/mirrored_event.ts";
import { SyncFailure } from "../failures/failure.ts";

// Graph allows four concurrent requests per mailbox; Google has no such limit but gains little.
const PARALLEL = 4;

/**
 * Returns the masters among `ids` that `seen` does not hold yet, fetching each with `fetchOne`
 * and remembering the result (null when the provider says it is gone: 404 or 410, since the
 * series may be deleted between the listing and this call; its deletion arrives in a later page).
 */
export async function fetchSeriesOnce(
  ids: Iterable<string>,
  seen: Map<string, unknown>,
  fetchOne: (id: string) => Promise<unknown>,
  etagOf: (raw: unknown) => string | null,
): Promise<MirroredSeries[]> {
  const todo = [...new Set(ids)].filter((id) => !seen.has(id));
  const series: MirroredSeries[] = [];
  for (let i = 0; i < todo.length; i += PARALLEL) {
    const batch = todo.slice(i, i + PARALLEL);
    const raws = await Promise.all(batch.map(async (id) => {
      try {
        return await fetchOne(id);
      } catch (error) {
        if (error instanceof SyncFailure && (error.status === 404 || error.status === 410)) {
          return null;
        }
        throw error;
      }
    }));
    batch.forEach((id, index) => {
      const raw = raws[index];
      seen.set(id, raw);
      if (raw !== null && typeof raw === "object") {
        series.push({ seriesId: id, etag: etagOf(raw), raw });
      }
    });
  }
  return series;
}
