/** @module The resources of the admin API, built from the config and the live database. */
import type { ApiModule } from "../api/api_module.ts";
import { changesModule } from "../api/changes_routes.ts";
import { subscribersModule } from "../api/subscribers_routes.ts";
import type { Config } from "../config/config.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Sql } from "../storage/client.ts";

/** What a resource's routes may use; `sql` is null while the database is unreachable. */
export type ApiModuleDeps = {
  config: Config;
  metrics: Metrics;
  sql: () => Sql | null;
};

/** Every resource under `/api/v1`, in the order the OpenAPI document lists them. */
export function adminApiModules(deps: ApiModuleDeps): ApiModule[] {
  return [
    changesModule(deps),
    subscribersModule(deps),
  ];
}
