/** @module SIGTERM/SIGINT: the first asks for a graceful stop, a second forces the exit. */
import { logger } from "../log/setup.ts";

const log = logger("signals");

/** Calls `onShutdown` once on the first SIGTERM or SIGINT; a second one (a second later) exits at once. */
export function onShutdownSignal(onShutdown: (signal: string) => void): () => void {
  let receivedAt: number | null = null;
  const handlers = (["SIGTERM", "SIGINT"] as const).map((signal) => {
    const handler = () => {
      // `deno task` forwards a signal its child also gets from the terminal's process group:
      // a repeat within a second is that echo, not an operator asking twice.
      if (receivedAt !== null && Date.now() - receivedAt < 1_000) return;
      if (receivedAt !== null) {
        log.warn("Second {signal}: exiting without waiting", { signal });
        Deno.exit(130);
      }
      receivedAt = Date.now();
      log.info("Received {signal}: shutting down gracefully", { signal });
      onShutdown(signal);
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
}
