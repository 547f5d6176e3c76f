/** @module The webhook a change becomes: Standard Webhooks body and a stable message id. */
import type { ChangeRow } from "../storage/change_feed.ts";
import { changeJson } from "./change_json.ts";

/** A message whose id and body are fixed at its first attempt and resent as they are. */
export type WebhookMessage = { seq: number; id: string; body: string };

/**
 * The message for one change to one subscriber. The id names subscriber, change and replay
 * generation: a retry repeats it (receivers dedupe on it), a replay gets a new one.
 */
export function webhookMessage(
  subscriber: { id: string; replay_generation: number },
  change: ChangeRow,
): WebhookMessage {
  const id = `msg_${subscriber.id.replaceAll("-", "")}_${change.seq}` +
    (subscriber.replay_generation > 0 ? `_r${subscriber.replay_generation}` : "");
  const body = JSON.stringify({
    type: change.type,
    timestamp: change.committed_at.toISOString(),
    data: changeJson(change),
  });
  return { seq: change.seq, id, body };
}
