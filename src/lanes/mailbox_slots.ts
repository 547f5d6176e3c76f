/**
 * @module Graph's "at most 4 concurrent requests per mailbox" (per app, so across replicas). A
 * sync has at most two requests in flight (a page and the next one prefetched), so a mailbox gets
 * `floor(limit / 2)` syncs at once, at least one: the claim takes no more of an account's
 * connections than that across replicas, and these slots queue what one claim took beyond it.
 */

/** Runs tasks with at most `perKey` of them at once for the same key. */
export type KeyedSlots = {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Tasks running or waiting for `key` (for tests). */
  load(key: string): number;
};

/** Syncs of one mailbox at once from the per-mailbox request limit. */
export function mailboxSyncs(requestLimit: number): number {
  return Math.max(1, Math.floor(requestLimit / 2));
}

/** Slots for syncs per mailbox from the per-mailbox request limit. */
export function mailboxSlots(requestLimit: number): KeyedSlots {
  return keyedSlots(mailboxSyncs(requestLimit));
}

/** A counting semaphore per key; a key's entry goes when its last task ends. */
export function keyedSlots(perKey: number): KeyedSlots {
  const keys = new Map<string, { running: number; waiting: (() => void)[] }>();
  async function run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let entry = keys.get(key);
    if (!entry) keys.set(key, entry = { running: 0, waiting: [] });
    if (entry.running >= perKey) await new Promise<void>((resolve) => entry!.waiting.push(resolve));
    else entry.running++;
    try {
      return await task();
    } finally {
      const next = entry.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays counted for it.
      if (next) next();
      else if (--entry.running === 0) keys.delete(key);
    }
  }
  const load = (key: string) => {
    const entry = keys.get(key);
    return entry ? entry.running + entry.waiting.length : 0;
  };
  return { run, load };
}
