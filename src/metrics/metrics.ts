/** @module Every metric calsync exports, defined in one place on one registry. */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The registry and the metrics the rest of calsync updates. */
export type Metrics = ReturnType<typeof createMetrics>;

/** Creates a fresh registry with all calsync metrics (one per process; tests make their own). */
export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];
  const metrics = {
    registry,
    syncFailures: new Counter({
      name: "calendar_sync_failures_total",
      help: "Failed calendar syncs and sync-related operations, by provider and failure kind.",
      labelNames: ["provider", "reason"] as const,
      registers,
    }),
    syncRuns: new Counter({
      name: "calendar_sync_runs_total",
      help: "Finished sync runs by provider and outcome (success, failure, cancelled).",
      labelNames: ["provider", "outcome"] as const,
      registers,
    }),
    syncDuration: new Histogram({
      name: "calendar_sync_duration_seconds",
      help: "Wall time of one sync run, provider calls and database writes included.",
      labelNames: ["provider"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    eventsWritten: new Counter({
      name: "calendar_sync_events_written_total",
      help: "Event rows written by syncs, by provider and operation (upsert, delete).",
      labelNames: ["provider", "op"] as const,
      registers,
    }),
    connections: new Gauge({
      name: "calendar_sync_connections",
      help: "Connections by state (due, backoff, idle, and the terminal reauth_required, " +
        "calendar_unavailable, deletions_held, disabled), refreshed by the scheduler.",
      labelNames: ["state"] as const,
      registers,
    }),
    terminalTransitions: new Counter({
      name: "calendar_sync_terminal_transitions_total",
      help: "Connections that entered a state where they stop syncing until an operator acts " +
        "(reauth_required, calendar_unavailable, deletions_held, disabled), by provider and state.",
      labelNames: ["provider", "state"] as const,
      registers,
    }),
    pushMissed: new Counter({
      name: "calendar_push_missed_total",
      help: "Safety-net polls that found changes no push notification announced, by provider; " +
        "the connection is polled at SYNC_POLL_INTERVAL until a notification arrives again.",
      labelNames: ["provider"] as const,
      registers,
    }),
    driftRepairs: new Counter({
      name: "calendar_sync_drift_repairs_total",
      help: "Mirror rows a reconciliation found wrong and repaired, by provider and kind " +
        "(missing, extra, changed); any repair means the incremental sync missed something.",
      labelNames: ["provider", "kind"] as const,
      registers,
    }),
    deletionsHeld: new Counter({
      name: "calendar_sync_deletions_held_total",
      help: "Event deletions the mass-deletion guard held back for an operator, by provider.",
      labelNames: ["provider"] as const,
      registers,
    }),
    oldestSuccessAge: new Gauge({
      name: "calendar_sync_oldest_success_age_seconds",
      help: "Age of the oldest last successful sync among active connections, by provider " +
        "(a connection that never succeeded counts from its creation).",
      labelNames: ["provider"] as const,
      registers,
    }),
    oldestVerificationAge: new Gauge({
      name: "calendar_sync_oldest_verification_age_seconds",
      help: "Age of the oldest last reconciliation among active connections, by provider " +
        "(never reconciled counts from creation).",
      labelNames: ["provider"] as const,
      registers,
    }),
    staleConnections: new Gauge({
      name: "calendar_sync_stale_connections",
      help: "Active connections without a successful sync for more than 3x their poll " +
        "interval, by provider.",
      labelNames: ["provider"] as const,
      registers,
    }),
    providerCircuitState: new Gauge({
      name: "calendar_provider_circuit_state",
      help: "Circuit breaker of each provider: 0 closed, 1 half-open (one probe sync), 2 open " +
        "(its connections wait, error counts untouched).",
      labelNames: ["provider"] as const,
      registers,
    }),
    providerQuotaRate: new Gauge({
      name: "calendar_provider_quota_per_minute",
      help: "Request rate the shared quota bucket grants a provider now (rate limits halve it).",
      labelNames: ["provider"] as const,
      registers,
    }),
    breakerHeld: new Counter({
      name: "calendar_sync_breaker_held_total",
      help: "Failed syncs left without an error count or backoff because their provider's " +
        "circuit breaker was open (the outage is the provider's).",
      labelNames: ["provider"] as const,
      registers,
    }),
    schedulerErrors: new Counter({
      name: "calendar_scheduler_errors_total",
      help:
        "Scheduler and process errors by operation (claim, listen, maintenance, unhandled_rejection, stray_socket_write).",
      labelNames: ["operation"] as const,
      registers,
    }),
    webhookNotifications: new Counter({
      name: "calendar_webhook_notifications_total",
      help:
        "Webhook deliveries by provider and result (accepted, duplicate, rejected, unavailable).",
      labelNames: ["provider", "result"] as const,
      registers,
    }),
    webhookDuration: new Histogram({
      name: "calendar_webhook_duration_seconds",
      help: "Time to answer a webhook delivery, database commit included.",
      labelNames: ["provider"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    httpRequests: new Counter({
      name: "calsync_http_requests_total",
      help: "HTTP requests answered, by route and status class.",
      labelNames: ["route", "status"] as const,
      registers,
    }),
    connectFlows: new Counter({
      name: "calsync_connect_flows_total",
      help: "Connect flows (OAuth consent) that ended, by provider kind and outcome " +
        "(connected, or why not: forged_state, replayed_state, access_denied, ...).",
      labelNames: ["provider", "outcome"] as const,
      registers,
    }),
    adminApiRejections: new Counter({
      name: "calsync_admin_api_rejections_total",
      help: "Admin API and console requests refused for a missing or wrong admin token, by reason.",
      labelNames: ["reason"] as const,
      registers,
    }),
    consoleActions: new Counter({
      name: "calsync_console_actions_total",
      help: "Operator actions taken in the console, by action and outcome (done, refused, failed).",
      labelNames: ["action", "outcome"] as const,
      registers,
    }),
    httpConnectionsClosed: new Counter({
      name: "calsync_http_connections_closed_total",
      help:
        "HTTP connections closed, by listener and reason (completed, client_closed, idle_timeout, " +
        "header_timeout, body_timeout, write_timeout, malformed, headers_too_large, " +
        "body_too_large, overloaded, connection_limit, shutdown).",
      labelNames: ["server", "reason"] as const,
      registers,
    }),
    httpConnectionsOpen: new Gauge({
      name: "calsync_http_connections_open",
      help: "HTTP connections open now, by listener.",
      labelNames: ["server"] as const,
      registers,
    }),
    httpBytesInFlight: new Gauge({
      name: "calsync_http_request_bytes_in_flight",
      help:
        "Request body bytes reserved or buffered now, by listener (capped by HTTP_MAX_BYTES_IN_FLIGHT).",
      labelNames: ["server"] as const,
      registers,
    }),
    databaseShed: new Counter({
      name: "calsync_db_work_shed_total",
      help:
        "Webhook database work refused before reaching the pool, by reason (queue_full, deadline).",
      labelNames: ["reason"] as const,
      registers,
    }),
    databaseQueued: new Gauge({
      name: "calsync_db_work_queued",
      help: "Webhook database work waiting now, for a database slot or (Google deliveries) for " +
        "a recording batch; each queue is capped by DB_QUEUE_MAX.",
      registers,
    }),
    databaseBatchSize: new Histogram({
      name: "calsync_db_batch_size",
      help: "Items written by one grouped statement, by statement (google_notifications: " +
        "Google deliveries recorded together; sync_completions: runs completed together).",
      labelNames: ["statement"] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    }),
    databaseUp: new Gauge({
      name: "calsync_database_up",
      help: "1 when the last database health probe succeeded, else 0.",
      registers,
    }),
    residentMemory: new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes.",
      registers,
      collect() {
        this.set(Deno.memoryUsage().rss);
      },
    }),
    heapUsed: new Gauge({
      name: "calsync_heap_used_bytes",
      help: "V8 heap in use, in bytes.",
      registers,
      collect() {
        this.set(Deno.memoryUsage().heapUsed);
      },
    }),
    startTime: new Gauge({
      name: "process_start_time_seconds",
      help: "Start time of the process since unix epoch in seconds.",
      registers,
    }),
    // Change feed delivery (#14).
    subscriberDeliveries: new Counter({
      name: "calsync_subscriber_deliveries_total",
      help: "Webhook delivery attempts to change feed subscribers, by subscriber and result " +
        "(success, rate_limited, server_error, client_error, timeout, network).",
      labelNames: ["subscriber", "result"] as const,
      registers,
    }),
    subscriberLag: new Gauge({
      name: "calsync_subscriber_lag_changes",
      help: "Changes committed that a subscriber has not acknowledged yet (head minus offset).",
      labelNames: ["subscriber"] as const,
      registers,
    }),
    subscriberLagSeconds: new Gauge({
      name: "calsync_subscriber_lag_seconds",
      help: "Age of the oldest change a subscriber has not acknowledged (0 when caught up).",
      labelNames: ["subscriber"] as const,
      registers,
    }),
    subscribersPaused: new Gauge({
      name: "calsync_subscribers_paused",
      help: "Subscribers paused (by an operator, or failing longer than SUBSCRIBER_MAX_FAILING).",
      registers,
    }),
    changeFeedPruned: new Counter({
      name: "calsync_change_feed_pruned_total",
      help: "Changes removed by retention (CHANGE_FEED_RETENTION, kept until acknowledged).",
      registers,
    }),
  };
  metrics.startTime.set(Math.round(Date.now() / 1000 - performance.now() / 1000));
  return metrics;
}
