/** @module One authorised provider call for channel work: token, deadline, one retry on 401. */
import { fetchProviderJson } from "../providers/provider_fetch.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { ChannelWork } from "./channel_deps.ts";

/** A request to the connection's provider; `body` is sent as JSON. */
export type ProviderCall = {
  method: "POST" | "PATCH" | "DELETE";
  url: string;
  body?: unknown;
  /** channels.stop and subscription DELETE answer 204 or 200 with no body. */
  emptyOk?: boolean;
};

/**
 * Makes the call with the connection's access token and returns the parsed JSON (null for an
 * allowed empty answer). A 401 refreshes the token once, as syncs do; every other problem
 * throws the classified SyncFailure from `fetchProviderJson`.
 */
export async function callProvider(work: ChannelWork, call: ProviderCall): Promise<unknown> {
  const { deps, connection, signal } = work;
  const fetchFn = deps.meter
    ? deps.meter(connection.providerKind, deps.fetch ?? fetch)
    : deps.fetch;
  for (let attempt = 1;; attempt++) {
    const accessToken = await deps.tokens.get(connection, signal);
    const headers: Record<string, string> = {
      authorization: `Bearer ${accessToken}`,
      accept: "application/json",
    };
    if (call.body !== undefined) headers["content-type"] = "application/json";
    try {
      const answer = await fetchProviderJson(call.url, {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
      }, {
        provider: connection.providerKind,
        timeoutMs: deps.timeoutMs,
        signal,
        fetch: fetchFn,
      });
      await deps.gate?.settle(connection, "success");
      return answer;
    } catch (error) {
      if (!(error instanceof SyncFailure)) throw error;
      if (error.kind === "auth" && attempt === 1) {
        // An access token can be revoked before it expires: refresh once, then give up.
        deps.tokens.invalidate(connection.id);
        continue;
      }
      const status = error.status ?? 0;
      // fetchProviderJson wants JSON; an empty 2xx is the documented answer of these calls.
      if (call.emptyOk && error.kind === "malformed_response" && status >= 200 && status < 300) {
        await deps.gate?.settle(connection, "success");
        return null;
      }
      throw error;
    }
  }
}
