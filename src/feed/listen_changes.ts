/** @module LISTEN for new changes; wakes on every commit that appended some, and on reconnect. */
import { logger } from "../log/setup.ts";
import { CHANGES_CHANNEL } from "../storage/change_feed.ts";
import type { Sql } from "../storage/client.ts";
import type { WakeSignal } from "../core/wake_signal.ts";

const log = logger("feed");

/**
 * Keeps a LISTEN on the changes channel until `signal` aborts, retrying when it cannot be
 * established. The listener only wakes readers: they read the table, and poll as well, because
 * notifications sent while disconnected are lost (postgres.js re-LISTENs and calls back then).
 */
export async function listenForChanges(
  sql: Sql,
  wake: WakeSignal,
  signal: AbortSignal,
  options: { retryMs?: number; onError?: (error: unknown) => void } = {},
): Promise<void> {
  const retryMs = options.retryMs ?? 1_000;
  while (!signal.aborted) {
    try {
      const subscription = await sql.listen(CHANGES_CHANNEL, () => wake.wake(), () => wake.wake());
      await new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await subscription.unlisten().catch(() => {});
      return;
    } catch (error) {
      options.onError?.(error);
      log.warn("Cannot LISTEN for changes; polling meanwhile", { error, kind: "database" });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, retryMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}
