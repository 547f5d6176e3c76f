/** @module Validates a Graph change-notification collection (wire formats §4.3, §4.5). */
import { z } from "zod";
import type { GraphChangeIdentity } from "./notification_keys.ts";

/** One item of `value[]`, classified. */
export type GraphItem =
  | {
    kind: "change";
    subscriptionId: string;
    clientState: string | null;
    identity: GraphChangeIdentity;
  }
  | {
    kind: "lifecycle";
    subscriptionId: string;
    clientState: string | null;
    lifecycleEvent: string;
    subscriptionExpirationDateTime: string | null;
    notificationId: string | null;
  }
  | { kind: "invalid"; index: number; message: string };

/** Why a whole body was refused. */
export type BodyProblem = {
  status: 400;
  error: "malformed_json" | "invalid_body";
  message: string;
};

/** The most items one delivery may carry; Graph batches far fewer. */
export const MAX_GRAPH_ITEMS = 1_000;

// Subscription ids are GUIDs; a strict set also keeps them safe as SQL text parameters.
const SubscriptionId = z.string().regex(/^[A-Za-z0-9\-_.:]{1,256}$/, "must be a subscription id");
const Text = (max: number) => z.string().max(max);
const Base = {
  subscriptionId: SubscriptionId,
  clientState: Text(1024).nullish(),
  id: Text(1024).nullish(),
  subscriptionExpirationDateTime: Text(64).nullish(),
  tenantId: Text(256).nullish(),
};
const Change = z.object({
  ...Base,
  changeType: z.string().regex(/^[A-Za-z,]{1,64}$/, "must be created, updated or deleted"),
  resource: z.string().min(1).max(8_192),
  resourceData: z.object({
    id: Text(4_096).nullish(),
    "@odata.etag": Text(1_024).nullish(),
  }).loose().nullish(),
}).loose();
const Lifecycle = z.object({
  ...Base,
  lifecycleEvent: z.string().min(1).max(128),
}).loose();
const Collection = z.object({
  value: z.array(z.unknown()).min(1, "must not be empty").max(
    MAX_GRAPH_ITEMS,
    `must have at most ${MAX_GRAPH_ITEMS} items`,
  ),
}).loose();

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue?.path.length ? issue.path.join(".") : "body";
  return `${path} ${issue?.message ?? "is invalid"}`;
}

/** Parses a notification body; never throws. Invalid items are reported, not fatal. */
export function parseGraphNotifications(
  text: string,
): { ok: true; items: GraphItem[] } | { ok: false; problem: BodyProblem } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return {
      ok: false,
      problem: { status: 400, error: "malformed_json", message: "Body is not valid JSON" },
    };
  }
  const collection = Collection.safeParse(json);
  if (!collection.success) {
    return {
      ok: false,
      problem: {
        status: 400,
        error: "invalid_body",
        message: `Body must be a change notification collection: ${describe(collection.error)}`,
      },
    };
  }
  const items = collection.data.value.map((raw, index): GraphItem => {
    const isLifecycle = typeof raw === "object" && raw !== null && "lifecycleEvent" in raw;
    if (isLifecycle) {
      const parsed = Lifecycle.safeParse(raw);
      if (!parsed.success) return { kind: "invalid", index, message: describe(parsed.error) };
      const item = parsed.data;
      return {
        kind: "lifecycle",
        subscriptionId: item.subscriptionId,
        clientState: item.clientState ?? null,
        lifecycleEvent: item.lifecycleEvent,
        subscriptionExpirationDateTime: item.subscriptionExpirationDateTime ?? null,
        notificationId: item.id ?? null,
      };
    }
    const parsed = Change.safeParse(raw);
    if (!parsed.success) return { kind: "invalid", index, message: describe(parsed.error) };
    const item = parsed.data;
    return {
      kind: "change",
      subscriptionId: item.subscriptionId,
      clientState: item.clientState ?? null,
      identity: {
        subscriptionId: item.subscriptionId,
        changeType: item.changeType,
        resource: item.resource,
        resourceDataId: item.resourceData?.id ?? null,
        etag: item.resourceData?.["@odata.etag"] ?? null,
        notificationId: item.id ?? null,
      },
    };
  });
  return { ok: true, items };
}
