/**
 * @module A bounded queue in front of the pool for work with a deadline (webhook deliveries).
 *
 * Racing a query against a timer does not stop it: postgres.js keeps a query it cannot send yet
 * and runs it once the database is back, long after the caller answered 503 (3,569 of 3,856 such
 * deliveries committed later in a fault campaign). Here work waits for one of a fixed number of
 * slots (the pool's size), in a queue of bounded length; work still waiting at its deadline is
 * dropped before reaching postgres.js, and work running at its deadline is cancelled through its
 * signal (see `cancelOnAbort`). A slot stays taken until its statement settles (or is given up
 * after `abandonAfterMs`), so at most that many statements can be left behind in postgres.js;
 * each of them writes nothing when it starts after `notAfter` by the database's clock.
 */
import { DatabaseDeadlineError, DatabaseQueueFullError } from "../core/errors.ts";

/** Why work was refused before it reached the pool: the `reason` of `calsync_db_work_shed_total`. */
export type ShedReason = "queue_full" | "deadline";

/** What running work is given: a signal that aborts at its deadline, and the write cutoff. */
export type WorkScope = { signal: AbortSignal; notAfter: Date };

/** Runs deadline-bound database work through a bounded number of slots. */
export type WorkGate = {
  run<T>(what: string, deadlineMs: number, work: (scope: WorkScope) => Promise<T>): Promise<T>;
};

/** Options of a gate; `graceMs` is how long a cancelled statement may take to report its fate. */
export type WorkGateOptions = {
  maxConcurrent: number;
  maxQueued: number;
  graceMs?: number;
  /** How long a slot stays with a statement that never settles (a half-open socket). */
  abandonAfterMs?: number;
  onShed?: (reason: ShedReason) => void;
  onQueueLength?: (length: number) => void;
};

/** Creates a gate; see the module comment. */
export function createWorkGate(options: WorkGateOptions): WorkGate {
  if (!Number.isInteger(options.maxConcurrent) || options.maxConcurrent < 1) {
    throw new RangeError(
      `Cannot create a work gate as 'maxConcurrent' must be a positive integer: current value is ${options.maxConcurrent}`,
    );
  }
  const graceMs = options.graceMs ?? 250;
  const abandonAfterMs = options.abandonAfterMs ?? 15_000;
  const waiting: (() => void)[] = [];
  let active = 0;

  function release(): void {
    const next = waiting.shift();
    options.onQueueLength?.(waiting.length);
    if (next) next();
    else active--;
  }

  /** Resolves once a slot is held; rejects when the queue is full or the deadline passes first. */
  function acquire(what: string, deadlineMs: number): Promise<void> {
    if (active < options.maxConcurrent) {
      active++;
      return Promise.resolve();
    }
    if (waiting.length >= options.maxQueued) {
      options.onShed?.("queue_full");
      return Promise.reject(new DatabaseQueueFullError(what, options.maxQueued));
    }
    return new Promise<void>((resolve, reject) => {
      const granted = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(granted), 1);
        options.onQueueLength?.(waiting.length);
        options.onShed?.("deadline");
        reject(new DatabaseDeadlineError(`${what} waited ${deadlineMs} ms for a database slot`));
      }, deadlineMs);
      waiting.push(granted);
      options.onQueueLength?.(waiting.length);
    });
  }

  return {
    async run(what, deadlineMs, work) {
      const started = performance.now();
      await acquire(what, deadlineMs);
      const left = Math.max(1, deadlineMs - (performance.now() - started));
      const controller = new AbortController();
      const notAfter = new Date(Date.now() + left + graceMs);
      const granted = performance.now();
      const running = work({ signal: controller.signal, notAfter });
      // The slot is held until the statement settles, or is given up on after abandonAfterMs.
      let held = true;
      let abandon: ReturnType<typeof setTimeout> | undefined;
      const free = () => {
        if (held) (held = false, clearTimeout(abandon), release());
      };
      const abandonIn = (ms: number) => (abandon = setTimeout(free, Math.max(0, ms)));
      // Work that beats its deadline (nearly all of it) needs no abandon timer: it is armed at
      // the deadline for the rest of abandonAfterMs, unless that is the shorter of the two.
      if (abandonAfterMs <= left) abandonIn(abandonAfterMs);
      running.then(free, free);
      const deadline = Promise.withResolvers<"deadline">();
      const timer = setTimeout(() => deadline.resolve("deadline"), left);
      try {
        const first = await Promise.race([running.then((value) => ({ value })), deadline.promise]);
        if (first !== "deadline") return first.value;
      } finally {
        clearTimeout(timer);
      }
      if (held && abandon === undefined) {
        abandonIn(abandonAfterMs - (performance.now() - granted));
      }
      controller.abort();
      // A statement that committed while being cancelled reports success: its result stands.
      const grace = Promise.withResolvers<"grace">();
      const graceTimer = setTimeout(() => grace.resolve("grace"), graceMs);
      try {
        const settled = await Promise.race([running.then((value) => ({ value })), grace.promise]);
        if (settled !== "grace") return settled.value;
      } catch (error) {
        throw new DatabaseDeadlineError(`${what} did not finish within ${deadlineMs} ms`, {
          cause: error,
        });
      } finally {
        clearTimeout(graceTimer);
      }
      throw new DatabaseDeadlineError(`${what} did not finish within ${deadlineMs} ms`);
    },
  };
}
