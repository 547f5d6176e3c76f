/**
 * @module Group commit for work with a deadline (webhook deliveries): items that arrive while a
 * batch is in flight go out together in the next one, through the `WorkGate`. One statement
 * then carries many deliveries: one socket write, one round trip and one commit instead of one
 * each, which is most of a delivery's cost (a profile of the ingestion bench put 41 % of the
 * daemon's busy time in postgres.js socket writes with one statement per delivery).
 *
 * Deadlines are kept per item: an item still queued at its deadline is dropped before it reaches
 * the database, and a batch runs under the earliest deadline of its items, so the gate cancels
 * it, and its `notAfter` stops it writing, no later than any of its items answers. Nothing an
 * item's caller was told failed can commit afterwards. A batch the gate shed before it reached
 * the database (no slot by that deadline) gives its other items another try.
 */
import { DatabaseDeadlineError, DatabaseQueueFullError } from "../core/errors.ts";
import type { ShedReason, WorkGate, WorkScope } from "./work_gate.ts";

/** Submits items with a deadline; each promise settles with its item's result or its failure. */
export type GatedBatches<I, R> = { submit(item: I, deadlineMs: number): Promise<R> };

/** How batches are formed and written; `flush` returns one result per item, in order. */
export type GatedBatchesOptions<I, R> = {
  gate: WorkGate;
  /** What a batch does, for error messages ("Recording Google notifications"). */
  what: string;
  maxBatch: number;
  /** Items waiting for a batch beyond this many are refused at once (`queue_full`). */
  maxQueued: number;
  flush: (items: I[], scope: WorkScope) => Promise<R[]>;
  onShed?: (reason: ShedReason) => void;
  /** Told each batch's size as it goes out. */
  onBatch?: (size: number) => void;
  /** Told how many items wait for a batch, whenever that changes. */
  onQueueLength?: (length: number) => void;
};

type Pending<I, R> = {
  item: I;
  deadline: number;
  resolve(result: R): void;
  reject(error: unknown): void;
  timer?: ReturnType<typeof setTimeout>;
};

/** Creates the batcher; at most one batch is in flight. */
export function createGatedBatches<I, R>(options: GatedBatchesOptions<I, R>): GatedBatches<I, R> {
  for (const name of ["maxBatch", "maxQueued"] as const) {
    if (!Number.isInteger(options[name]) || options[name] < 1) {
      throw new RangeError(
        `${name} must be a positive integer: current value is ${options[name]}`,
      );
    }
  }
  const queue: Pending<I, R>[] = [];
  let flushing = false;

  const expire = (pending: Pending<I, R>, deadlineMs: number) => {
    const at = queue.indexOf(pending);
    if (at < 0) return;
    queue.splice(at, 1);
    options.onQueueLength?.(queue.length);
    options.onShed?.("deadline");
    pending.reject(
      new DatabaseDeadlineError(`${options.what} waited ${deadlineMs} ms for a batch`),
    );
  };

  /** Writes one batch; resolves to its items that may try again (it never reached the database). */
  const write = async (batch: Pending<I, R>[]): Promise<Pending<I, R>[]> => {
    const left = Math.min(...batch.map((pending) => pending.deadline)) - performance.now();
    let sent = false;
    try {
      const results = await options.gate.run(options.what, Math.max(1, left), async (scope) => {
        sent = true;
        options.onBatch?.(batch.length);
        return await options.flush(batch.map((pending) => pending.item), scope);
      });
      if (results.length !== batch.length) {
        throw new Error(`flush returned ${results.length} results for ${batch.length} items`);
      }
      batch.forEach((pending, i) => pending.resolve(results[i]));
      return [];
    } catch (error) {
      // Shed while it waited for a slot, at its earliest deadline: the items with time left
      // go again, so one delivery near its end does not take the others down with it.
      const now = performance.now();
      const again = !sent && error instanceof DatabaseDeadlineError
        ? batch.filter((pending) => pending.deadline > now)
        : [];
      for (const pending of batch) if (!again.includes(pending)) pending.reject(error);
      return again;
    }
  };

  const next = async () => {
    flushing = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, options.maxBatch);
        for (const pending of batch) clearTimeout(pending.timer);
        options.onQueueLength?.(queue.length);
        queue.unshift(...await write(batch));
      }
    } finally {
      flushing = false;
    }
  };

  return {
    submit(item, deadlineMs) {
      if (queue.length >= options.maxQueued) {
        options.onShed?.("queue_full");
        return Promise.reject(new DatabaseQueueFullError(options.what, options.maxQueued));
      }
      return new Promise<R>((resolve, reject) => {
        const pending: Pending<I, R> = {
          item,
          deadline: performance.now() + deadlineMs,
          resolve,
          reject,
        };
        queue.push(pending);
        options.onQueueLength?.(queue.length);
        // Alone, the item goes out at once (next() takes it before its first await); behind a
        // batch in flight, it waits no longer than its deadline.
        if (!flushing) void next();
        else pending.timer = setTimeout(() => expire(pending, deadlineMs), deadlineMs);
      });
    },
  };
}
