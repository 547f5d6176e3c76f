/** @module A level-triggered wake-up for the feed's loops: a wake before the wait is not lost. */

/** Wakes a waiting loop; `wait` resolves at once if woken since the last `reset`. */
export type Wake = { wake(): void; reset(): void; wait(ms: number): Promise<void> };

/** Creates a wake-up whose waits also end when `stop` aborts. */
export function createWake(stop: AbortSignal): Wake {
  let woken = false;
  let wakeUp: (() => void) | null = null;
  return {
    wake() {
      woken = true;
      wakeUp?.();
    },
    reset() {
      woken = false;
    },
    wait(ms) {
      if (woken || stop.aborted) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          stop.removeEventListener("abort", done);
          wakeUp = null;
          resolve();
        }
        wakeUp = done;
        stop.addEventListener("abort", done, { once: true });
      });
    },
  };
}
