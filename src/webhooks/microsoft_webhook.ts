/** @module `POST /webhooks/microsoft`: Graph validation handshakes and change notifications. */
import type { Context } from "hono";
import { withDeadline } from "../storage/client.ts";
import { type GraphRecord, recordGraphNotifications } from "../storage/webhook_dedupe_keys.ts";
import { logger } from "../log/setup.ts";
import { graphChangeDedupeKey, graphLifecycleDedupeKey } from "./notification_keys.ts";
import { type GraphItem, parseGraphNotifications } from "./graph_notification.ts";
import { secretsEqual } from "./secret_compare.ts";
import {
  count,
  errorFields,
  isJsonContentType,
  problem,
  remaining,
  timed,
  type WebhookDeps,
} from "./webhook_deps.ts";

const log = logger("webhooks");

/** Graph tokens are opaque and short; a cap keeps us from echoing arbitrary amounts of text. */
export const MAX_VALIDATION_TOKEN_CHARS = 2_048;

const LIFECYCLE_ACTIONS: Record<string, GraphRecord["action"]> = {
  reauthorizationRequired: "renew",
  subscriptionRemoved: "recreate",
  missed: "full_sync",
};

/**
 * Handles one Graph delivery. A `validationToken` query parameter is the subscription handshake
 * (on create, renew and reauthorize): answered at once, without the database. Otherwise the batch
 * is validated item by item and recorded in one statement; 202 only after it commits, 503 when it
 * cannot commit (Graph retries 5xx for up to four hours).
 */
export async function handleMicrosoftWebhook(deps: WebhookDeps, c: Context): Promise<Response> {
  return await timed(deps, "microsoft", (startedAt) => answer(deps, c, startedAt));
}

async function answer(deps: WebhookDeps, c: Context, startedAt: number): Promise<Response> {
  if (c.req.method !== "POST") {
    count(deps, "microsoft", "rejected");
    return problem(c, 405, "method_not_allowed", "Use POST for Graph change notifications", {
      allow: "POST",
    });
  }
  // URLSearchParams decodes the token (percent escapes and '+'), as Graph requires.
  const validationToken = new URL(c.req.url).searchParams.get("validationToken");
  if (validationToken !== null) return validate(c, validationToken);

  if (!isJsonContentType(c.req.header("content-type") ?? null)) {
    count(deps, "microsoft", "rejected");
    log.warn("Rejected a Graph notification: content type is not application/json", {
      provider: "microsoft",
      content_type: (c.req.header("content-type") ?? "").slice(0, 100),
    });
    return problem(c, 415, "unsupported_media_type", "Graph notifications are application/json");
  }
  let text: string;
  try {
    text = await c.req.text();
  } catch {
    count(deps, "microsoft", "rejected");
    return problem(c, 400, "unreadable_body", "Cannot read the request body");
  }
  const parsed = parseGraphNotifications(text);
  if (!parsed.ok) {
    count(deps, "microsoft", "rejected");
    log.warn("Rejected a Graph notification: {message}", {
      provider: "microsoft",
      message: parsed.problem.message,
    });
    return problem(c, parsed.problem.status, parsed.problem.error, parsed.problem.message);
  }
  const items = parsed.items;
  const invalid = items.filter((item) => item.kind === "invalid");
  const valid = items.filter((item) => item.kind !== "invalid");
  for (const item of invalid) {
    log.warn("Rejected a Graph notification item: {message}", {
      provider: "microsoft",
      index: item.index,
      message: item.message,
    });
  }
  count(deps, "microsoft", "rejected", invalid.length);
  if (valid.length === 0) {
    return problem(
      c,
      400,
      "invalid_notification",
      `No valid notification in the batch: ${(invalid[0] as { message: string }).message}`,
    );
  }

  const sql = deps.sql();
  if (!sql) return unavailable(deps, c, valid.length, new Error("The database is not open yet"));
  let channels;
  try {
    channels = await withDeadline(
      deps.lookup.find(sql, "microsoft", valid.map((item) => item.subscriptionId)),
      remaining(startedAt, deps.deadlineMs),
      "Graph subscription lookup",
    );
  } catch (error) {
    return unavailable(deps, c, valid.length, error);
  }

  const records: GraphRecord[] = [];
  let ignored = 0;
  let forged = 0;
  for (const item of valid) {
    const channel = channels.get(item.subscriptionId);
    if (!channel) {
      ignored++;
      log.info("Ignored a Graph notification for an unknown subscription", {
        provider: "microsoft",
        subscription_id: item.subscriptionId,
      });
      continue;
    }
    if (item.clientState === null || !secretsEqual(channel.secret, item.clientState)) {
      forged++;
      log.warn("Rejected a Graph notification: clientState does not match", {
        provider: "microsoft",
        subscription_id: item.subscriptionId,
        connection_id: channel.connectionId,
        problem: item.clientState === null ? "missing" : "mismatch",
      });
      continue;
    }
    const record = await toRecord(item);
    if (record) records.push(record);
    else ignored++;
  }
  count(deps, "microsoft", "rejected", forged);

  let result = { known: new Set<string>(), fresh: new Set<string>() };
  try {
    result = await withDeadline(
      recordGraphNotifications(sql, records),
      remaining(startedAt, deps.deadlineMs),
      "Recording Graph notifications",
    );
  } catch (error) {
    return unavailable(deps, c, records.length + ignored, error);
  }
  let accepted = 0;
  let duplicate = 0;
  // Duplicates inside one batch share a key: the first is the one recorded.
  const seen = new Set<string>();
  for (const record of records) {
    if (!result.known.has(record.key)) ignored++;
    else if (result.fresh.has(record.key) && !seen.has(record.key)) accepted++;
    else duplicate++;
    seen.add(record.key);
  }
  count(deps, "microsoft", "accepted", accepted);
  count(deps, "microsoft", "duplicate", duplicate);
  count(deps, "microsoft", "ignored", ignored);
  if (accepted + duplicate + ignored === 0) {
    // Everything was forged or malformed: nothing of it is worth a retry.
    return problem(c, 403, "forbidden", "clientState does not match");
  }
  return c.json({ accepted, duplicate, ignored, rejected: forged + invalid.length }, 202);
}

async function toRecord(
  item: Exclude<GraphItem, { kind: "invalid" }>,
): Promise<GraphRecord | null> {
  if (item.kind === "change") {
    return {
      key: await graphChangeDedupeKey(item.identity),
      subscriptionId: item.subscriptionId,
      action: "sync",
    };
  }
  const action = LIFECYCLE_ACTIONS[item.lifecycleEvent];
  if (!action) {
    log.info("Ignored a Graph lifecycle notification of an unknown type", {
      provider: "microsoft",
      subscription_id: item.subscriptionId,
      lifecycle_event: item.lifecycleEvent.slice(0, 100),
    });
    return null;
  }
  log.info("Graph lifecycle notification {lifecycle_event} for subscription {subscription_id}", {
    provider: "microsoft",
    subscription_id: item.subscriptionId,
    lifecycle_event: item.lifecycleEvent,
  });
  return {
    key: await graphLifecycleDedupeKey({
      subscriptionId: item.subscriptionId,
      lifecycleEvent: item.lifecycleEvent,
      subscriptionExpirationDateTime: item.subscriptionExpirationDateTime,
      notificationId: item.notificationId,
    }),
    subscriptionId: item.subscriptionId,
    action,
  };
}

function validate(c: Context, token: string): Response {
  if (token.length === 0 || token.length > MAX_VALIDATION_TOKEN_CHARS) {
    log.warn("Rejected a Graph validation request: token length {length} out of range", {
      provider: "microsoft",
      length: token.length,
    });
    return problem(
      c,
      400,
      "invalid_validation_token",
      `validationToken must be 1-${MAX_VALIDATION_TOKEN_CHARS} characters`,
    );
  }
  // text/plain plus nosniff: the echoed token can never be interpreted as HTML or script.
  return c.body(token, 200, {
    "content-type": "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
  });
}

function unavailable(deps: WebhookDeps, c: Context, items: number, error: unknown): Response {
  count(deps, "microsoft", "unavailable", Math.max(items, 1));
  log.error("Cannot record Graph notifications: database unavailable; answered 503", {
    provider: "microsoft",
    items,
    kind: "database",
    ...errorFields(error),
  });
  return problem(c, 503, "unavailable", "Cannot record the notifications now; retry later", {
    "retry-after": "5",
  });
}
