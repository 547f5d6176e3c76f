/** @module Accounts moved from v1 learn their subject from an id token a refresh returns. */
import type { ProviderKind } from "../core/provider_kind.ts";
import { logger } from "../log/setup.ts";
import type { Sql } from "../storage/client.ts";
import { setAccountIdentity } from "../storage/accounts.ts";
import { readIdToken } from "./id_token.ts";
import type { OAuthEndpoints } from "./oauth_endpoints.ts";

const log = logger("accounts");

/** Checks the id token like the connect flow does, then records who the account is. */
export async function learnAccountIdentity(
  sql: Sql,
  endpoints: Record<ProviderKind, OAuthEndpoints>,
  input: { accountId: string; kind: ProviderKind; idToken: string; nowMs?: number },
): Promise<void> {
  const expected = endpoints[input.kind];
  if (expected.clientId === null) return;
  try {
    const identity = readIdToken(input.idToken, {
      kind: input.kind,
      clientId: expected.clientId,
      issuerOrigin: expected.issuerOrigin,
      tenantId: expected.tenantId,
      nowMs: input.nowMs ?? Date.now(),
    });
    if (await setAccountIdentity(sql, input.accountId, identity)) {
      log.info("Account {account_id} is {subject}", {
        account_id: input.accountId,
        subject: identity.subject,
      });
    }
  } catch (error) {
    log.warn("Cannot read the id token of account {account_id}'s refresh", {
      account_id: input.accountId,
      error_message: (error as Error).message,
    });
  }
}
