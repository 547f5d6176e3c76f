/** @module `POST /webhooks/microsoft`: Graph validation handshakes and change notifications. */
import type { Context } from "hono";
import { DatabaseNotOpenError, HttpError } from "../core/errors.ts";
import type { Sql } from "../storage/client.ts";
import type { ChannelIdentity } from "../storage/webhook_channels.ts";
import { type GraphRecord, recordGraphNotifications } from "../storage/webhook_dedupe_keys.ts";
import { logger } from "../log/setup.ts";
import { graphChangeDedupeKey, graphLifecycleDedupeKey } from "./notification_keys.ts";
import { type GraphItem, parseGraphNotifications } from "./graph_notification.ts";
import { secretsEqual } from "../crypto/secret_compare.ts";
import {
  count,
  errorFields,
  isJsonContentType,
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
  return await timed(deps, "microsoft", async (startedAt) => {
    const tally: Tally = { counts: {}, firstProblem: null, subscriptions: [] };
    try {
      return await answer({ deps, c, startedAt, tally });
    } finally {
      logTally(tally);
    }
  });
}

/** One delivery being answered: what every step needs. */
type Delivery = { deps: WebhookDeps; c: Context; startedAt: number; tally: Tally };

/**
 * Items refused or ignored in one delivery, by reason. They are logged as one line per delivery:
 * a line per item let one unauthenticated 25 KB POST write 1,000 lines.
 */
type Tally = {
  counts: Partial<Record<TallyReason, number>>;
  /** The first problem of an invalid item, as an example. */
  firstProblem: string | null;
  /** A few subscription ids involved, so an operator can find the source. */
  subscriptions: string[];
};

type TallyReason =
  | "invalid_item"
  | "unknown_subscription"
  // Not "client_state_*": the redactor masks fields whose names look like secrets.
  | "forged_missing"
  | "forged_mismatch"
  | "unknown_lifecycle_event";

const SAMPLE_SUBSCRIPTIONS = 3;

function note(tally: Tally, reason: TallyReason, subscriptionId?: string): void {
  tally.counts[reason] = (tally.counts[reason] ?? 0) + 1;
  if (
    subscriptionId !== undefined && tally.subscriptions.length < SAMPLE_SUBSCRIPTIONS &&
    !tally.subscriptions.includes(subscriptionId)
  ) {
    tally.subscriptions.push(subscriptionId);
  }
}

/** Writes the delivery's one line about refused and ignored items, if there were any. */
function logTally(tally: Tally): void {
  const total = Object.values(tally.counts).reduce((sum, n) => sum + n, 0);
  if (total === 0) return;
  const refused = total - (tally.counts.unknown_subscription ?? 0) -
    (tally.counts.unknown_lifecycle_event ?? 0);
  const fields = {
    provider: "microsoft",
    items: total,
    reasons: tally.counts,
    first_problem: tally.firstProblem,
    subscription_ids: tally.subscriptions,
  };
  if (refused > 0) log.warn("Refused {items} Graph notification items", fields);
  else log.info("Ignored {items} Graph notification items", fields);
}

/** A batch item that passed validation. */
type ValidItem = Exclude<GraphItem, { kind: "invalid" }>;

/** The valid items of a batch, and how many were refused. */
type Batch = { valid: ValidItem[]; invalid: number };

/** The items worth recording, and how many were ignored (unknown) or forged. */
type Checked = { records: GraphRecord[]; ignored: number; forged: number };

async function answer(delivery: Delivery): Promise<Response> {
  const { deps, c } = delivery;
  if (c.req.method !== "POST") {
    count(deps, "microsoft", "rejected");
    throw new HttpError(405, {
      type: "method_not_allowed",
      message: "Use POST for Graph change notifications",
      headers: { allow: "POST" },
    });
  }
  // URLSearchParams decodes the token (percent escapes and '+'), as Graph requires.
  const validationToken = new URL(c.req.url).searchParams.get("validationToken");
  if (validationToken !== null) return validate(c, validationToken);

  const batch = await parseBatch(delivery);
  const sql = deps.sql();
  if (!sql) {
    throw unavailable(deps, {
      items: batch.valid.length,
      subscriptionIds: batch.valid.map((item) => item.subscriptionId),
      error: new DatabaseNotOpenError(),
    });
  }
  const channels = await findSubscriptions(delivery, { sql, items: batch.valid });
  const checked = await authenticate(delivery, { items: batch.valid, channels });
  const result = await record(delivery, { sql, checked });
  return respond(delivery, { batch, checked, result });
}

/** Reads and validates the body; throws the 4xx answer when no item of it is usable. */
async function parseBatch({ deps, c, tally }: Delivery): Promise<Batch> {
  if (!isJsonContentType(c.req.header("content-type") ?? null)) {
    count(deps, "microsoft", "rejected");
    log.warn("Rejected a Graph notification: content type is not application/json", {
      provider: "microsoft",
      content_type: (c.req.header("content-type") ?? "").slice(0, 100),
    });
    throw new HttpError(415, {
      type: "unsupported_media_type",
      message: "Graph notifications are application/json",
    });
  }
  let text: string;
  try {
    text = await c.req.text();
  } catch {
    count(deps, "microsoft", "rejected");
    throw new HttpError(400, { type: "unreadable_body", message: "Cannot read the request body" });
  }
  const parsed = parseGraphNotifications(text);
  if (!parsed.ok) {
    count(deps, "microsoft", "rejected");
    log.warn("Rejected a Graph notification: {message}", {
      provider: "microsoft",
      message: parsed.problem.message,
    });
    const { status, error, message } = parsed.problem;
    throw new HttpError(status, { type: error, message });
  }
  const valid: ValidItem[] = [];
  const invalid: string[] = [];
  for (const item of parsed.items) {
    if (item.kind !== "invalid") {
      valid.push(item);
      continue;
    }
    invalid.push(item.message);
    note(tally, "invalid_item");
    tally.firstProblem ??= `item ${item.index}: ${item.message}`;
  }
  count(deps, "microsoft", "rejected", invalid.length);
  if (valid.length === 0) {
    const message = `No valid notification in the batch: ${invalid[0]}`;
    throw new HttpError(400, { type: "invalid_notification", message });
  }
  return { valid, invalid: invalid.length };
}

/** The known subscriptions among the items' subscription ids; 503 when the lookup fails. */
async function findSubscriptions(
  { deps, startedAt }: Delivery,
  { sql, items }: { sql: Sql; items: ValidItem[] },
): Promise<Map<string, ChannelIdentity>> {
  const ids = items.map((item) => item.subscriptionId);
  // As for Google: subscriptions all cached need no database slot.
  const cached = deps.lookup.cachedAll("microsoft", ids);
  if (cached) return cached;
  try {
    return await deps.gate.run(
      "Graph subscription lookup",
      remaining(startedAt, deps.deadlineMs),
      ({ signal }) => deps.lookup.find(sql, "microsoft", ids, signal),
    );
  } catch (error) {
    throw unavailable(deps, {
      items: items.length,
      subscriptionIds: ids,
      error,
    });
  }
}

/** Keeps the items of known subscriptions whose clientState matches; counts the forged ones. */
async function authenticate(
  { deps, tally }: Delivery,
  { items, channels }: { items: ValidItem[]; channels: Map<string, ChannelIdentity> },
): Promise<Checked> {
  const checked: Checked = { records: [], ignored: 0, forged: 0 };
  for (const item of items) {
    const channel = channels.get(item.subscriptionId);
    if (!channel) {
      checked.ignored++;
      note(tally, "unknown_subscription", item.subscriptionId);
      continue;
    }
    if (item.clientState === null || !secretsEqual(channel.secret, item.clientState)) {
      checked.forged++;
      const reason = item.clientState === null ? "forged_missing" : "forged_mismatch";
      note(tally, reason, item.subscriptionId);
      continue;
    }
    const record = await toRecord(item, tally);
    if (record) checked.records.push(record);
    else checked.ignored++;
  }
  count(deps, "microsoft", "rejected", checked.forged);
  return checked;
}

/** Records the batch in one statement (one dedupe key per item); 503 when it cannot commit. */
async function record(
  { deps, startedAt }: Delivery,
  { sql, checked }: { sql: Sql; checked: Checked },
): Promise<{ known: Set<string>; fresh: Set<string> }> {
  try {
    return await deps.gate.run(
      "Recording Graph notifications",
      remaining(startedAt, deps.deadlineMs),
      (bounds) => recordGraphNotifications(sql, checked.records, bounds),
    );
  } catch (error) {
    throw unavailable(deps, {
      items: checked.records.length + checked.ignored,
      subscriptionIds: checked.records.map((item) => item.subscriptionId),
      error,
    });
  }
}

/** Counts each recorded item's result and answers 202, or 403 when nothing was genuine. */
function respond(
  { deps, c }: Delivery,
  { batch, checked, result }: {
    batch: Batch;
    checked: Checked;
    result: { known: Set<string>; fresh: Set<string> };
  },
): Response {
  let accepted = 0;
  let duplicate = 0;
  let ignored = checked.ignored;
  // Duplicates inside one batch share a key: the first is the one recorded.
  const seen = new Set<string>();
  for (const record of checked.records) {
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
    throw new HttpError(403, { type: "forbidden", message: "clientState does not match" });
  }
  const rejected = checked.forged + batch.invalid;
  return c.json({ accepted, duplicate, ignored, rejected }, 202);
}

async function toRecord(item: ValidItem, tally: Tally): Promise<GraphRecord | null> {
  if (item.kind === "change") {
    return {
      key: await graphChangeDedupeKey(item.identity),
      subscriptionId: item.subscriptionId,
      action: "sync",
    };
  }
  const action = LIFECYCLE_ACTIONS[item.lifecycleEvent];
  if (!action) {
    note(tally, "unknown_lifecycle_event", item.subscriptionId);
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
    throw new HttpError(400, {
      type: "invalid_validation_token",
      message: `validationToken must be 1-${MAX_VALIDATION_TOKEN_CHARS} characters`,
    });
  }
  // text/plain plus nosniff: the echoed token can never be interpreted as HTML or script.
  return c.body(token, 200, {
    "content-type": "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
  });
}

/**
 * Counts and logs a batch the database cannot take now; returns the 503 to throw. The line names
 * the batch's subscriptions, so an operator can tell which deliveries failed.
 */
function unavailable(
  deps: WebhookDeps,
  { items, subscriptionIds, error }: { items: number; subscriptionIds: string[]; error: unknown },
): HttpError {
  count(deps, "microsoft", "unavailable", Math.max(items, 1));
  log.error("Cannot record Graph notifications: database unavailable; answered 503", {
    provider: "microsoft",
    items,
    subscription_ids: [...new Set(subscriptionIds)],
    kind: "database",
    ...errorFields(error),
  });
  return new HttpError(503, {
    type: "unavailable",
    message: "Cannot record the notifications now; retry later",
    headers: { "retry-after": "5" },
    cause: error,
  });
}
