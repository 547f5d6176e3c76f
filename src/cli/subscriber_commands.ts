/** @module `calsync subscribers ...`: change feed subscribers (webhook endpoints). */
import { CommandError, UsageError } from "../core/errors.ts";
import { ROTATION_OVERLAP_MS, subscriberInputProblem } from "../feed/subscriber_input.ts";
import { generateSecret } from "../feed/webhook_signature.ts";
import { firstSeqSince } from "../storage/change_feed.ts";
import {
  deleteSubscriber,
  insertSubscriber,
  listSubscribers,
  replaySubscriber,
  rotateSubscriberSecret,
  setSubscriberStatus,
} from "../storage/subscribers.ts";
import { seqOption } from "./change_commands.ts";
import { type CommandHandler, type CommandOptions, required, uuid } from "./command_context.ts";
import { formatTable } from "./format.ts";

function optionalUuid(options: CommandOptions, name: string): string | null {
  const value = options[name];
  return typeof value === "string" ? uuid(value.trim(), name) : null;
}

function subscriberOption(options: CommandOptions): string {
  return uuid(required(options, "subscriber"), "subscriber");
}

/** Adds a subscriber; prints its id and, once, its signing secret. */
export const addSubscriberCommand: CommandHandler = async ({ sql, secrets, options, emit }) => {
  const url = required(options, "url");
  const secret = typeof options.secret === "string" ? options.secret.trim() : generateSecret();
  const problem = subscriberInputProblem({ url, secret });
  if (problem) throw new UsageError(`--${problem}`);
  const connectionId = optionalUuid(options, "connection");
  const accountId = optionalUuid(options, "account");
  if (connectionId && accountId) throw new UsageError("Give --connection or --account, not both");
  const from = seqOption(options, "from");
  const row = await insertSubscriber(sql, {
    url,
    connectionId,
    accountId,
    // Sealed at rest like refresh tokens; shown in plaintext only in this answer.
    secret: await secrets.seal(secret),
    fromSeq: from === undefined ? null : Math.max(from - 1, 0),
  });
  emit(
    { ...row, secret },
    `Subscriber ${row.id} added, delivering changes after ${row.acked_seq}\n` +
      `Signing secret (shown once): ${secret}\n`,
  );
};

/** Lists subscribers with their offsets and failures. */
export const listSubscribersCommand: CommandHandler = async ({ sql, emit }) => {
  const rows = await listSubscribers(sql);
  emit(
    rows,
    formatTable(rows, [
      "id",
      "url",
      "status",
      "acked_seq",
      "attempts",
      "failing_since",
      "connection_id",
      "account_id",
    ]),
  );
};

/** Removes a subscriber. */
export const removeSubscriberCommand: CommandHandler = async ({ sql, options, emit }) => {
  const id = subscriberOption(options);
  if (!await deleteSubscriber(sql, id)) throw new CommandError(`No subscriber "${id}"`);
  emit({ id, removed: true }, `Subscriber ${id} removed\n`);
};

/** Pauses or resumes a subscriber. */
export function statusCommand(status: "active" | "paused"): CommandHandler {
  return async ({ sql, options, emit }) => {
    const id = subscriberOption(options);
    const row = await setSubscriberStatus(sql, id, status, "paused by an operator");
    if (!row) throw new CommandError(`No subscriber "${id}"`);
    emit(row, `Subscriber ${id} ${status === "active" ? "resumed" : "paused"}\n`);
  };
}

/** Re-delivers from `--from SEQ` or from the first change committed at `--since TIME`. */
export const replaySubscriberCommand: CommandHandler = async ({ sql, options, emit }) => {
  const id = subscriberOption(options);
  const from = seqOption(options, "from");
  const since = typeof options.since === "string" ? new Date(options.since) : null;
  if ((from === undefined) === (since === null)) {
    throw new UsageError("Give one of --from SEQ or --since TIME");
  }
  if (since !== null && Number.isNaN(since.getTime())) {
    throw new UsageError(`--since must be an ISO time, got "${options.since}"`);
  }
  const start = from ?? await firstSeqSince(sql, since!);
  const row = await replaySubscriber(sql, id, start);
  if (!row) throw new CommandError(`No subscriber "${id}"`);
  emit(row, `Subscriber ${id} will receive again every change from ${start}\n`);
};

/** Rotates the signing secret; the old one keeps signing too for 24 hours. */
export const rotateSecretCommand: CommandHandler = async ({ sql, secrets, options, emit }) => {
  const id = subscriberOption(options);
  const secret = typeof options.secret === "string" ? options.secret.trim() : generateSecret();
  if (subscriberInputProblem({ url: "https://x", secret })) {
    throw new UsageError("--secret must be whsec_ followed by base64 of 24 to 64 bytes");
  }
  if (!await rotateSubscriberSecret(sql, id, await secrets.seal(secret), ROTATION_OVERLAP_MS)) {
    throw new CommandError(`No subscriber "${id}"`);
  }
  emit({ id, secret }, `New signing secret (shown once; the old one works 24 h more): ${secret}\n`);
};
