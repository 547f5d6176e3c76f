/** @module The resources of the admin API, built from the config and the live database. */
import type { ApiModule } from "../api/api_module.ts";
import { changesModule } from "../api/changes_routes.ts";
import { subscribersModule } from "../api/subscribers_routes.ts";
import type { Config } from "../config/config.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Sql } from "../storage/client.ts";
import { accountsApi } from "../api/accounts_routes.ts";
import { connectionsApi } from "../api/connections_routes.ts";
import type { ChannelDeps } from "../channels/channel_deps.ts";
import { connectDepsOnDemand } from "./connect_wiring.ts";
import { createChannelDeps, secretBoxFromConfig } from "./wiring.ts";

/** What a resource's routes may use; `sql` is null while the database is unreachable. */
export type ApiModuleDeps = {
  config: Config;
  metrics: Metrics;
  sql: () => Sql | null;
};

/** Every resource under `/api/v1`, in the order the OpenAPI document lists them. */
export function adminApiModules(deps: ApiModuleDeps): ApiModule[] {
  const accounts = accountResourceDeps(deps);
  const subscriberSecrets = secretBoxFromConfig(deps.config);
  return [
    accountsApi(accounts),
    connectionsApi(accounts),
    changesModule(deps),
    subscribersModule({ sql: deps.sql, seal: (secret) => subscriberSecrets.seal(secret) }),
  ];
}

/** Connect and channel deps on the live pool, for the accounts and connections resources. */
function accountResourceDeps(deps: ApiModuleDeps) {
  const connect = connectDepsOnDemand(deps.config, deps.sql, deps.metrics);
  let channels: { sql: Sql; deps: ChannelDeps } | null = null;
  return {
    connect,
    channels: () => {
      const pool = deps.sql();
      if (pool === null) return null;
      if (channels?.sql !== pool) {
        channels = { sql: pool, deps: createChannelDeps(deps.config, pool, deps.metrics) };
      }
      return channels.deps;
    },
    timeoutMs: deps.config.SYNC_HTTP_TIMEOUT_MS,
  };
}
