/** @module Last-resort handlers: every stray error leaves a log line before anything else. */
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { isStraySocketWrite } from "../storage/client.ts";

const log = logger("process");

/**
 * A promise rejected with no handler is logged and counted, and the daemon goes on: such
 * rejections are leftovers (a lost race, a late deadline) of work that was already accounted for.
 * An uncaught exception is logged as fatal and still ends the process, because its state is
 * unknown; systemd or the container runtime restarts it, and leases make that safe.
 */
export function installProcessGuards(metrics: Metrics): () => void {
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    if (isStraySocketWrite(event.reason)) {
      // A database connection closed under a buffered write; its queries already failed.
      metrics.schedulerErrors.inc({ operation: "stray_socket_write" });
      log.warn("A buffered write reached a database connection the server had closed", {
        error: event.reason,
      });
      return;
    }
    metrics.schedulerErrors.inc({ operation: "unhandled_rejection" });
    log.error("Unhandled promise rejection", { error: event.reason });
  };
  const onError = (event: ErrorEvent) => {
    log.fatal("Uncaught exception; exiting", { error: event.error ?? event.message });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}
