/** @module A level-triggered wake-up: a wake that lands before the wait is not lost. */

/** Wakes a waiting loop; `wait` resolves at once if woken since the last `reset`. */
export type WakeSignal = {
  wake(): void;
  /** Forgets earlier wake-ups; call before looking for work. */
  reset(): void;
  /** Resolves after `ms`, on a wake-up, or when `stop` aborts. */
  wait(ms: number): Promise<void>;
};

/** Creates a wake signal that also resolves every wait once `stop` aborts. */
export function createWakeSignal(stop: AbortSignal): WakeSignal {
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
