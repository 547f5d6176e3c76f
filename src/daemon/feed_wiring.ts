/** @module Starts change feed delivery to subscribers from the config. */
import type { Config } from "../config/config.ts";
import { type DeliveryLoop, startDelivery } from "../feed/delivery_loop.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Sql } from "../storage/client.ts";
import { secretBoxFromConfig } from "./wiring.ts";

/** Starts this replica's delivery loop (it shares the pool; HTTP waits hold no connection). */
export function startFeedDelivery(config: Config, sql: Sql, metrics: Metrics): DeliveryLoop {
  const timeoutMs = config.SUBSCRIBER_HTTP_TIMEOUT_MS;
  const secrets = secretBoxFromConfig(config);
  return startDelivery({
    openSecret: (stored) => secrets.open(stored),
    sql,
    metrics,
    replicaId: `${Deno.hostname()}:${Deno.pid}`,
    concurrency: config.SUBSCRIBER_CONCURRENCY,
    timeoutMs,
    backoffBaseMs: config.SUBSCRIBER_BACKOFF_BASE_MS,
    backoffMaxMs: Math.max(config.SUBSCRIBER_BACKOFF_MAX_MS, config.SUBSCRIBER_BACKOFF_BASE_MS),
    maxFailingMs: config.SUBSCRIBER_MAX_FAILING,
    // Longer than any one attempt, renewed by every acknowledgement.
    leaseMs: Math.max(60_000, 3 * timeoutMs),
  });
}
