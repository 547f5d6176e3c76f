/**
 * @module Group commit: calls that arrive while a batch is in flight go out together in the
 * next one. Under load many runs finish at once and share one statement (one round trip, one
 * commit, one socket write); alone, a call goes out at once and waits for nothing.
 */

/** Submits items to be flushed in batches; each promise settles with its item's result. */
export type GroupCommit<I, R> = { submit(item: I): Promise<R> };

type Pending<I, R> = { item: I; resolve(result: R): void; reject(error: unknown): void };

/**
 * `flush` writes a batch and returns one result per item, in order; if it rejects, every item of
 * that batch rejects with its error. At most one batch is in flight, of at most `maxBatch` items.
 */
export function createGroupCommit<I, R>(
  flush: (items: I[]) => Promise<R[]>,
  options: { maxBatch: number; onBatch?: (size: number) => void },
): GroupCommit<I, R> {
  if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
    throw new RangeError(
      `maxBatch must be a positive integer: current value is ${options.maxBatch}`,
    );
  }
  const queue: Pending<I, R>[] = [];
  let flushing = false;
  const next = async () => {
    flushing = true;
    while (queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
      options.onBatch?.(batch.length);
      try {
        const results = await flush(batch.map((pending) => pending.item));
        if (results.length !== batch.length) {
          throw new Error(`flush returned ${results.length} results for ${batch.length} items`);
        }
        batch.forEach((pending, i) => pending.resolve(results[i]));
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    flushing = false;
  };
  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (!flushing) void next();
      });
    },
  };
}
