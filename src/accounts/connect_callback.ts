/**
 * @module Completes a connect flow at the callback: claim the state once, exchange the code with
 * the verifier, read who consented, discover calendars, then store account and connections in one
 * transaction. Any failure before that transaction stores nothing (the state stays used).
 */
import { ConnectError } from "../core/errors.ts";
import { sha256Hex } from "../crypto/sha256.ts";
import { logger } from "../log/setup.ts";
import {
  type AccountRow,
  adoptConsent,
  findAccount,
  upsertConsentedAccount,
} from "../storage/accounts.ts";
import type { Tx } from "../storage/client.ts";
import { findProvider, type ProviderRow } from "../storage/calendar_providers.ts";
import {
  claimConnectState,
  type ConnectStateRow,
  recordConnectOutcome,
} from "../storage/connect_states.ts";
import { insertAccountConnections } from "../storage/connections.ts";
import { discoverCalendars, type DiscoveredCalendar, pickCalendars } from "./calendar_discovery.ts";
import { exchangeCode } from "./code_exchange.ts";
import type { ConnectDeps } from "./connect_deps.ts";
import { readIdToken } from "./id_token.ts";

const log = logger("accounts");

/** A completed consent: the account and the calendars this flow connected. */
export type CompletedConnect = { account: AccountRow; connected: DiscoveredCalendar[] };

const STATE_FAILURES = {
  unknown: ["forged_state", "The sign-in link is not one calsync made"],
  used: ["replayed_state", "This sign-in link was already used"],
  expired: ["expired_state", "This sign-in link expired"],
} as const;

/** Handles `GET /connect/{provider}/callback?code=&state=` (or `?error=`). */
export async function completeConnect(
  deps: ConnectDeps,
  providerName: string,
  query: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<CompletedConnect> {
  const provider = await findProvider(deps.sql, providerName);
  let kind = provider?.kind ?? "unknown";
  try {
    if (!provider) throw new ConnectError("unknown_provider", `No provider "${providerName}"`);
    if (!query.state) throw new ConnectError("forged_state", "The callback carries no state");
    const stateHash = await sha256Hex(query.state);
    const claim = await claimConnectState(deps.sql, stateHash, provider.id);
    if (claim.kind !== "claimed") {
      const [reason, message] = STATE_FAILURES[claim.kind];
      throw new ConnectError(reason, message);
    }
    try {
      const done = await finish(deps, provider, claim.state, query, signal);
      deps.metrics.connectFlows.inc({ provider: provider.kind, outcome: "connected" });
      log.info("Connected account {account_id} of {provider}: {calendars} calendars", {
        account_id: done.account.id,
        provider: provider.name,
        provider_kind: provider.kind,
        calendars: done.connected.length,
      });
      return done;
    } catch (error) {
      const reason = error instanceof ConnectError ? error.reason : "exchange_failed";
      await recordConnectOutcome(deps.sql, stateHash, { error: reason }).catch(() => {});
      throw error;
    }
  } catch (error) {
    kind = provider?.kind ?? kind;
    const reason = error instanceof ConnectError ? error.reason : "internal";
    deps.metrics.connectFlows.inc({ provider: kind, outcome: reason });
    log.warn("Connect flow for {provider} failed: {reason}", {
      provider: providerName,
      provider_kind: kind,
      reason,
      error_message: (error as Error).message,
    });
    throw error;
  }
}

async function finish(
  deps: ConnectDeps,
  provider: ProviderRow,
  state: ConnectStateRow,
  query: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<CompletedConnect> {
  if (query.error) {
    // Only the error code is repeated: the description is the provider's free text.
    const code = /^[a-z_]{1,64}$/.test(query.error) ? query.error : "unknown";
    throw code === "access_denied"
      ? new ConnectError("access_denied", "Access to the calendars was not granted")
      : new ConnectError("provider_error", `The provider answered ${code}`);
  }
  if (!query.code) throw new ConnectError("provider_error", "The callback carries no code");
  const endpoints = deps.endpoints[provider.kind];
  const request = { timeoutMs: deps.timeoutMs, signal, fetch: deps.fetch };
  const grant = await exchangeCode(endpoints, {
    code: query.code,
    codeVerifier: await deps.secrets.open(state.code_verifier),
    redirectUri: state.redirect_uri,
  }, request);
  const identity = readIdToken(grant.idToken, {
    kind: provider.kind,
    clientId: endpoints.clientId ?? "",
    issuerOrigin: endpoints.issuerOrigin,
    tenantId: endpoints.tenantId,
    nowMs: deps.now?.() ?? Date.now(),
  });
  let calendars: DiscoveredCalendar[] = [];
  if (state.calendars !== "none") {
    try {
      calendars = pickCalendars(
        await discoverCalendars(provider.kind, grant.accessToken, {
          googleBaseUrl: deps.googleBaseUrl,
          graphBaseUrl: deps.graphBaseUrl,
          ...request,
        }),
        state.calendars,
      );
    } catch (error) {
      throw new ConnectError(
        "discovery_failed",
        `Cannot list the account's calendars: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  const sealed = grant.refreshToken === null ? null : await deps.secrets.seal(grant.refreshToken);
  const accountId = await deps.sql.begin(async (tx) => {
    const consented = {
      providerId: provider.id,
      subject: identity.subject,
      email: identity.email,
      refreshToken: sealed,
      scopes: grant.scopes,
    };
    const account = state.account_id === null
      ? await upsertConsentedAccount(tx, consented)
      : await reconsentAccount(tx, state.account_id, consented);
    if (account === null) {
      throw new ConnectError(
        "no_refresh_token",
        "The provider granted access without a refresh token; connect again and consent",
      );
    }
    await insertAccountConnections(tx, {
      providerId: provider.id,
      accountId: account.id,
      calendarIds: calendars.map((calendar) => calendar.id),
      label: identity.email,
    });
    await recordConnectOutcome(tx, state.state_hash, { accountId: account.id });
    return account.id;
  });
  return { account: (await findAccount(deps.sql, accountId))!, connected: calendars };
}

/**
 * A re-consent for a known account: an account moved from v1 (subject unknown) takes the
 * consenting identity, so the user's calendars stay on it; one that knows its subject accepts only
 * that user, so a link made for Alice cannot put Bob's token on Alice's account.
 */
async function reconsentAccount(
  tx: Tx,
  accountId: string,
  consented: Parameters<typeof upsertConsentedAccount>[1],
): Promise<{ id: string } | null> {
  const account = await findAccount(tx, accountId);
  if (account && account.subject !== null && account.subject !== consented.subject) {
    throw new ConnectError(
      "wrong_account",
      "Another user consented than the account this flow was started for",
    );
  }
  if (account?.subject === null) {
    const adopted = await adoptConsent(tx, accountId, consented);
    if (adopted) return { id: accountId };
  }
  return await upsertConsentedAccount(tx, consented);
}
