/** @module Follows the change feed from a sequence number: every change once, in order. */
import { HttpError } from "../core/errors.ts";
import {
  type ChangeFilter,
  type ChangeRow,
  feedBounds,
  readChanges,
} from "../storage/change_feed.ts";
import type { Sql } from "../storage/client.ts";
import { listenForChanges } from "./listen_changes.ts";
import { createWakeSignal } from "../core/wake_signal.ts";

/** A reader asked for changes retention already removed: it must re-read the mirror. */
export function prunedError(after: number, prunedThrough: number): HttpError {
  return new HttpError(410, {
    type: "gone",
    message: `Changes up to ${prunedThrough} were pruned (asked after ${after}): re-read the ` +
      `mirror, then follow from the feed's head`,
    extra: { pruned_through: prunedThrough },
  });
}

/** One page of changes after `after`, or a 410 when part of what follows `after` is gone. */
export async function readPage(
  sql: Sql,
  after: number,
  limit: number,
  filter: ChangeFilter = {},
): Promise<{ changes: ChangeRow[]; head: number }> {
  const bounds = await feedBounds(sql);
  if (after < bounds.prunedThrough) throw prunedError(after, bounds.prunedThrough);
  return { changes: await readChanges(sql, after, limit, filter), head: bounds.head };
}

/** How to follow: where from, page size, the safety-net poll, when to stop. */
export type FollowOptions = {
  after: number;
  signal: AbortSignal;
  limit?: number;
  filter?: ChangeFilter;
  /** Reads even without a notification this often (notifications can be lost). */
  pollMs?: number;
  /** Waits this long after a failed read. */
  retryMs?: number;
  onError?: (error: unknown) => void;
};

/**
 * Calls `onChanges` with each page in order until `signal` aborts, woken by NOTIFY within
 * milliseconds of a commit. A pruned position rejects (the reader must re-read the mirror).
 */
export async function followChanges(
  sql: Sql,
  options: FollowOptions,
  onChanges: (changes: ChangeRow[]) => void | Promise<void>,
): Promise<void> {
  // The LISTEN ends with the follow, also when it ends by throwing.
  const stop = new AbortController();
  const abort = () => stop.abort();
  options.signal.addEventListener("abort", abort, { once: true });
  if (options.signal.aborted) stop.abort();
  const wake = createWakeSignal(stop.signal);
  const listening = listenForChanges(sql, wake, stop.signal);
  let after = options.after;
  try {
    while (!options.signal.aborted) {
      wake.reset();
      let full = false;
      try {
        const { changes } = await readPage(sql, after, options.limit ?? 500, options.filter);
        if (changes.length > 0) {
          await onChanges(changes);
          after = changes[changes.length - 1].seq;
        }
        full = changes.length === (options.limit ?? 500);
      } catch (error) {
        if (error instanceof HttpError) throw error;
        options.onError?.(error);
        await wake.wait(options.retryMs ?? 1_000);
        continue;
      }
      if (!full) await wake.wait(options.pollMs ?? 5_000);
    }
  } finally {
    options.signal.removeEventListener("abort", abort);
    stop.abort();
    await listening;
  }
}
