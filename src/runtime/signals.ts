/** @module SIGTERM/SIGINT: the first asks for a graceful stop, a second forces the exit. */
import { logger } from "../log/setup.ts";

const log = logger("signals");

/** Calls `onShutdown` once on the first SIGTERM or SIGINT; a second signal exits at once. */
export function onShutdownSignal(onShutdown: (signal: string) => void): () => void {
  let received = false;
  const handlers = (["SIGTERM", "SIGINT"] as const).map((signal) => {
    const handler = () => {
      if (received) {
        log.warn("Second {signal}: exiting without waiting", { signal });
        Deno.exit(130);
      }
      received = true;
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
