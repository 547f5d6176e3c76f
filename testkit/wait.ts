/** @module Polling waits with deadlines, for conditions the caller cannot be told about. */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than null/undefined/false,
 * and returns it; returns null when `timeoutMs` passes first. Probe errors count as "not yet".
 */
export async function waitFor<T>(
  probe: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<T | null> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== null && value !== undefined && value !== false) return value;
    } catch {
      // A probe against a system under fault may fail; the deadline decides.
    }
    if (Date.now() >= deadline) return null;
    await sleep(options.intervalMs ?? 25);
  }
}
