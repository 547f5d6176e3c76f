/**
 * @module The delivery loop of one replica: claims due subscribers (leased, so one replica
 * delivers to a subscriber at a time) and runs each on its own, so a slow or failing
 * subscriber holds only its own slot; woken by NOTIFY when changes commit.
 */
import { logger } from "../log/setup.ts";
import { claimDueSubscribers, subscriberLag } from "../storage/subscribers.ts";
import { deliverSubscriber, type DeliveryDeps } from "./deliver.ts";
import { listenForChanges } from "./listen_changes.ts";
import { createWakeSignal } from "../core/wake_signal.ts";

const log = logger("feed");

/** The loop's settings besides what each delivery needs. */
export type DeliveryLoopDeps = DeliveryDeps & {
  replicaId: string;
  concurrency: number;
  /** Claims even without a notification this often (retries come due, notifications get lost). */
  pollMs?: number;
  /** How often the lag gauges are refreshed. */
  lagRefreshMs?: number;
};

/** A running delivery loop. */
export type DeliveryLoop = { stop(timeoutMs: number): Promise<void> };

/** Starts delivering until `stop`. */
export function startDelivery(deps: DeliveryLoopDeps): DeliveryLoop {
  const stopping = new AbortController();
  const wake = createWakeSignal(stopping.signal);
  const running = new Map<string, Promise<void>>();
  const listening = listenForChanges(deps.sql, wake, stopping.signal, {
    onError: () => deps.metrics.schedulerErrors.inc({ operation: "feed_listen" }),
  });
  const looping = loop(deps, wake, running, stopping.signal);
  return {
    async stop(timeoutMs) {
      stopping.abort();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([looping, listening, ...running.values()]),
        new Promise((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
      clearTimeout(timer);
    },
  };
}

async function loop(
  deps: DeliveryLoopDeps,
  wake: ReturnType<typeof createWakeSignal>,
  running: Map<string, Promise<void>>,
  signal: AbortSignal,
): Promise<void> {
  let lagAt = 0;
  while (!signal.aborted) {
    wake.reset();
    try {
      const claimed = await claimDueSubscribers(deps.sql, {
        limit: deps.concurrency - running.size,
        leaseMs: deps.leaseMs,
        owner: deps.replicaId,
        skip: [...running.keys()],
      });
      for (const subscriber of claimed) {
        const run = deliverSubscriber(deps, subscriber, signal)
          .then((outcome) => {
            if (outcome === "more") wake.wake();
          })
          .catch((error) => {
            deps.metrics.schedulerErrors.inc({ operation: "feed_delivery" });
            log.error("Delivery to subscriber {subscriber_id} failed on the database", {
              error,
              kind: "database",
              subscriber_id: subscriber.id,
            });
          })
          .finally(() => {
            running.delete(subscriber.id);
            wake.wake();
          });
        running.set(subscriber.id, run);
      }
      if (Date.now() - lagAt >= (deps.lagRefreshMs ?? 5_000)) {
        lagAt = Date.now();
        await refreshLag(deps);
      }
    } catch (error) {
      deps.metrics.schedulerErrors.inc({ operation: "feed_claim" });
      log.error("Cannot claim subscribers for delivery", { error, kind: "database" });
    }
    await wake.wait(deps.pollMs ?? 1_000);
  }
}

/** Sets the per-subscriber lag gauges and the paused count from the database. */
export async function refreshLag(deps: Pick<DeliveryDeps, "sql" | "metrics">): Promise<void> {
  const rows = await subscriberLag(deps.sql);
  deps.metrics.subscriberLag.reset();
  deps.metrics.subscriberLagSeconds.reset();
  for (const row of rows) {
    deps.metrics.subscriberLag.set({ subscriber: row.id }, row.lag);
    deps.metrics.subscriberLagSeconds.set({ subscriber: row.id }, row.lag_seconds);
  }
  deps.metrics.subscribersPaused.set(rows.filter((row) => row.status === "paused").length);
}
