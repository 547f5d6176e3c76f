/** @module What the connect flow and discovery need: database, secrets, endpoints, settings. */
import type { ProviderKind } from "../core/provider_kind.ts";
import type { SecretBox } from "../crypto/secret_box.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { FetchFn } from "../providers/provider_fetch.ts";
import type { Sql } from "../storage/client.ts";
import type { ConnectCalendars } from "../storage/connect_states.ts";
import type { OAuthEndpoints } from "./oauth_endpoints.ts";

/** Dependencies of the connect flow, built once by the wiring (daemon or CLI). */
export type ConnectDeps = {
  sql: Sql;
  secrets: SecretBox;
  metrics: Metrics;
  endpoints: Record<ProviderKind, OAuthEndpoints>;
  /** `CALSYNC_PUBLIC_URL`: the redirect URIs are built from it (null: no connect flow). */
  publicUrl: string | null;
  stateTtlMs: number;
  defaultCalendars: ConnectCalendars;
  googleBaseUrl: string;
  graphBaseUrl: string;
  timeoutMs: number;
  fetch?: FetchFn;
  now?: () => number;
};

/** The callback URL registered at the provider for the calsync provider named `name`. */
export function redirectUriFor(publicUrl: string, providerName: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/connect/${encodeURIComponent(providerName)}/callback`;
}
