/**
 * @module Change-notification subscriptions of the fake Microsoft Graph provider: validation
 * handshake, lifetime limits, batched notifications with retries and lifecycle events (§4).
 */
import { z } from "zod";
import { checkPolicy, type Deliverer, type DeliveryPolicy } from "./fake_delivery.ts";
import { graphDateTime } from "./fake_microsoft_calendar.ts";

/** A subscription resource as Graph returns it. */
export type GraphSubscription = {
  id: string;
  resource: string;
  changeType: string;
  clientState: string | null;
  notificationUrl: string;
  lifecycleNotificationUrl: string | null;
  expirationDateTime: string;
  [field: string]: unknown;
};

/** One outbound POST attempt: a validation handshake, a change batch or a lifecycle batch. */
export type GraphDelivery = {
  kind: "validation" | "notification" | "lifecycle";
  url: string;
  subscriptionIds: string[];
  attempt: number;
  status: number | "error" | "timeout";
  at: number;
};

/** Lifecycle events Graph sends for Outlook resources (§4.5). */
export type GraphLifecycleEvent = "reauthorizationRequired" | "subscriptionRemoved" | "missed";

/** A refused subscription request as a Graph error. */
export type GraphSubscriptionError = { status: number; code: string; message: string };

/** Limits and compressed timings; Graph's real ones are 10 s, 3 s and retries for 4 hours. */
export type GraphSubscriptionOptions = {
  /** Read lazily: the listener (and so its port) starts after these options are checked. */
  origin: () => string;
  tenantId: string;
  userId: string;
  maxSubscriptionMinutes: number;
  validationTimeoutMs: number;
  notificationTimeoutMs: number;
  retryBaseMs: number;
  maxAttempts: number;
  batchWindowMs: number;
};

/** Subscription bookkeeping and delivery for one fake Graph server. */
export type GraphSubscriptions = {
  readonly deliveries: GraphDelivery[];
  create(
    body: unknown,
  ): Promise<{ subscription: GraphSubscription } | { error: GraphSubscriptionError }>;
  renew(
    id: string,
    body: unknown,
  ): Promise<{ subscription: GraphSubscription } | { error: GraphSubscriptionError }>;
  reauthorize(id: string): Promise<{ ok: true } | { error: GraphSubscriptionError }>;
  get(id: string): GraphSubscription | undefined;
  remove(id: string): boolean;
  list(): GraphSubscription[];
  notifyChange(
    calendarId: string,
    changeType: "created" | "updated" | "deleted",
    event: { id: string; etag: string },
  ): void;
  emitLifecycle(id: string, event: GraphLifecycleEvent): boolean;
};

type Stored = { subscription: GraphSubscription; calendarId: string; expiresAt: number };

const CHANGE_TYPES = new Set(["created", "updated", "deleted"]);
const url = z.string().refine((value) => URL.canParse(value), "must be an absolute URL");
const createBody = z.object({
  changeType: z.string().refine(
    (v) => v.split(",").every((t) => CHANGE_TYPES.has(t.trim())),
    "unknown changeType",
  ),
  notificationUrl: url,
  lifecycleNotificationUrl: url.optional(),
  resource: z.string(),
  expirationDateTime: z.string(),
  clientState: z.string().max(128).optional(),
});
const renewBody = z.object({
  expirationDateTime: z.string().optional(),
  notificationUrl: url.optional(),
})
  .strict();
// .NET HttpStatusCode names, which is how Graph spells the receiver's answer in its message.
const STATUS_NAMES: Record<number, string> = {
  201: "Created",
  202: "Accepted",
  204: "NoContent",
  301: "MovedPermanently",
  302: "Found",
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  500: "InternalServerError",
  502: "BadGateway",
  503: "ServiceUnavailable",
};

function invalid(message: string): { error: GraphSubscriptionError } {
  return { error: { status: 400, code: "InvalidRequest", message } };
}

function notFound(id: string): { error: GraphSubscriptionError } {
  return {
    error: { status: 404, code: "ResourceNotFound", message: `The object '${id}' was not found.` },
  };
}

/** Maps a subscription resource path to the calendar it watches; null if Graph would reject it. */
function resourceCalendar(resource: string): string | null {
  const path = resource.replace(/^\//, "");
  if (/^(me|users\/[^/]+)(\/calendar)?\/events$/i.test(path)) return "primary";
  const match = path.match(/^(?:me|users\/[^/]+)\/calendars\/([^/]+)\/events$/i);
  return match ? decodeURIComponent(match[1]) : null;
}

/** Creates the subscription side of a fake Graph server. */
export function createGraphSubscriptions(
  deliverer: Deliverer,
  options: GraphSubscriptionOptions,
): GraphSubscriptions {
  const subscriptions = new Map<string, Stored>();
  const deliveries: GraphDelivery[] = [];
  const pending = new Map<string, { items: Record<string, unknown>[]; ids: Set<string> }>();
  const policy: DeliveryPolicy = checkPolicy("Graph change notifications", {
    maxAttempts: options.maxAttempts,
    baseDelayMs: options.retryBaseMs,
    timeoutMs: options.notificationTimeoutMs,
    isSuccess: (status) => status >= 200 && status < 300,
    // Anything but a timely 2xx is retried until Graph gives up (§4.4).
    isRetryable: () => true,
  });

  function live(id: string): Stored | undefined {
    const stored = subscriptions.get(id);
    if (stored && stored.expiresAt <= Date.now()) {
      // "If you don't renew a subscription in time, Microsoft Graph deletes the subscription".
      subscriptions.delete(id);
      return undefined;
    }
    return stored;
  }

  function checkExpiration(value: string): number | { error: GraphSubscriptionError } {
    const expiresAt = Date.parse(value);
    if (Number.isNaN(expiresAt)) return invalid(`Invalid expirationDateTime '${value}'.`);
    if (expiresAt <= Date.now()) return invalid("Subscription expiration must be in the future.");
    if (expiresAt > Date.now() + options.maxSubscriptionMinutes * 60_000) {
      const message =
        `Subscription expiration can only be ${options.maxSubscriptionMinutes} minutes in the future.`;
      return { error: { status: 400, code: "ExtensionError", message } };
    }
    return expiresAt;
  }

  async function validate(
    target: string,
    subscriptionId: string,
  ): Promise<GraphSubscriptionError | null> {
    const token =
      `Validation: Testing client application reachability for subscription Request-Id: ${crypto.randomUUID()}`;
    const separator = target.includes("?") ? "&" : "?";
    const result = await deliverer.post(
      `${target}${separator}validationToken=${encodeURIComponent(token)}`,
      { headers: { "content-type": "text/plain; charset=utf-8" }, body: "" },
      options.validationTimeoutMs,
    );
    const status = typeof result === "string" ? result : result.status;
    deliveries.push({
      kind: "validation",
      url: target,
      subscriptionIds: [subscriptionId],
      attempt: 1,
      status,
      at: Date.now(),
    });
    const failed = "Subscription validation request failed.";
    if (result === "timeout") return invalid("Subscription validation request timed out.").error;
    if (result === "error") {
      return invalid(
        `${failed} Notification endpoint must respond with 200 OK to validation request.`,
      ).error;
    }
    if (result.status !== 200) {
      const name = STATUS_NAMES[result.status] ?? String(result.status);
      return invalid(
        `${failed} HTTP status code is '${name}'. Notification endpoint must respond with 200 OK to validation request.`,
      ).error;
    }
    if (!result.contentType.toLowerCase().startsWith("text/plain")) {
      return invalid(`${failed} Response must have content type 'text/plain'.`).error;
    }
    // The echo must be the URL-decoded token; an encoded echo fails, as the doc warns (§4.2).
    if (result.text !== token) {
      return invalid(`${failed} Response must exactly match validationToken query parameter.`)
        .error;
    }
    return null;
  }

  async function validateAll(
    subscription: GraphSubscription,
  ): Promise<GraphSubscriptionError | null> {
    const targets = [subscription.notificationUrl, subscription.lifecycleNotificationUrl].filter((
      u,
    ) => u !== null);
    for (const target of targets) {
      const error = await validate(target, subscription.id);
      if (error) return error;
    }
    return null;
  }

  function send(
    kind: "notification" | "lifecycle",
    target: string,
    items: Record<string, unknown>[],
    ids: string[],
  ) {
    deliverer.send({
      url: target,
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ value: items }),
      onAttempt(attempt, status) {
        deliveries.push({
          kind,
          url: target,
          subscriptionIds: ids,
          attempt,
          status,
          at: Date.now(),
        });
      },
      onGiveUp() {
        // Lost change notifications surface as `missed` to subscriptions that can hear it (§4.5).
        if (kind !== "notification") return;
        for (const id of ids) {
          if (live(id)?.subscription.lifecycleNotificationUrl) emit(id, "missed");
        }
      },
    }, policy);
  }

  function emit(id: string, lifecycleEvent: GraphLifecycleEvent): boolean {
    const stored = live(id);
    if (!stored) return false;
    const { subscription } = stored;
    const item = {
      subscriptionId: id,
      subscriptionExpirationDateTime: subscription.expirationDateTime,
      tenantId: options.tenantId,
      clientState: subscription.clientState,
      lifecycleEvent,
    };
    send(
      "lifecycle",
      subscription.lifecycleNotificationUrl ?? subscription.notificationUrl,
      [item],
      [id],
    );
    if (lifecycleEvent === "subscriptionRemoved") subscriptions.delete(id);
    return true;
  }

  function flushPending(): void {
    for (const [target, batch] of pending) {
      send("notification", target, batch.items, [...batch.ids]);
    }
    pending.clear();
  }

  return {
    deliveries,
    async create(body) {
      const parsed = createBody.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return invalid(`Invalid subscription: '${issue?.path.join(".")}' ${issue?.message}.`);
      }
      const request = parsed.data;
      const calendarId = resourceCalendar(request.resource);
      if (calendarId === null) {
        return invalid(`Resource '${request.resource}' is not supported for subscriptions.`);
      }
      const expiresAt = checkExpiration(request.expirationDateTime);
      if (typeof expiresAt !== "number") return expiresAt;
      const subscription: GraphSubscription = {
        "@odata.context": `${options.origin()}/v1.0/$metadata#subscriptions/$entity`,
        id: crypto.randomUUID(),
        resource: request.resource.replace(/^\//, ""),
        applicationId: "24d3b144-21ae-4080-943f-7067b395b913",
        changeType: request.changeType,
        clientState: request.clientState ?? null,
        notificationUrl: request.notificationUrl,
        notificationQueryOptions: null,
        lifecycleNotificationUrl: request.lifecycleNotificationUrl ?? null,
        expirationDateTime: `${graphDateTime(expiresAt)}Z`,
        creatorId: options.userId,
        includeResourceData: null,
        latestSupportedTlsVersion: "v1_2",
        encryptionCertificate: null,
        encryptionCertificateId: null,
        notificationUrlAppId: null,
      };
      const failed = await validateAll(subscription);
      if (failed) return { error: failed };
      subscriptions.set(subscription.id, { subscription, calendarId, expiresAt });
      return { subscription: structuredClone(subscription) };
    },
    async renew(id, body) {
      const stored = live(id);
      if (!stored) return notFound(id);
      const parsed = renewBody.safeParse(body);
      if (!parsed.success) {
        return invalid("Only expirationDateTime and notificationUrl can be updated.");
      }
      const expiresAt = parsed.data.expirationDateTime === undefined
        ? stored.expiresAt
        : checkExpiration(parsed.data.expirationDateTime);
      if (typeof expiresAt !== "number") return expiresAt;
      const next: GraphSubscription = {
        ...stored.subscription,
        notificationUrl: parsed.data.notificationUrl ?? stored.subscription.notificationUrl,
        expirationDateTime: `${graphDateTime(expiresAt)}Z`,
      };
      // Renewals re-run the handshake and fail the same way creation does (§4.2).
      const failed = await validateAll(next);
      if (failed) return { error: failed };
      stored.subscription = next;
      stored.expiresAt = expiresAt;
      return { subscription: structuredClone(next) };
    },
    async reauthorize(id) {
      const stored = live(id);
      if (!stored) return notFound(id);
      const failed = await validateAll(stored.subscription);
      return failed ? { error: failed } : { ok: true };
    },
    get: (id) => structuredClone(live(id)?.subscription),
    remove(id) {
      return live(id) !== undefined && subscriptions.delete(id);
    },
    list() {
      return [...subscriptions.keys()].map(live)
        .filter((stored) => stored !== undefined)
        .map((stored) => structuredClone(stored.subscription));
    },
    notifyChange(calendarId, changeType, event) {
      for (const id of [...subscriptions.keys()]) {
        const stored = live(id);
        if (!stored || stored.calendarId !== calendarId) continue;
        const { subscription } = stored;
        if (!subscription.changeType.split(",").map((t) => t.trim()).includes(changeType)) continue;
        const resource = `Users/${options.userId}/Events/${event.id}`;
        const item = {
          subscriptionId: id,
          subscriptionExpirationDateTime: subscription.expirationDateTime,
          changeType,
          resource,
          resourceData: {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": event.etag,
            id: event.id,
          },
          clientState: subscription.clientState,
          tenantId: options.tenantId,
        };
        const batch = pending.get(subscription.notificationUrl) ??
          { items: [], ids: new Set<string>() };
        if (pending.size === 0) deliverer.schedule(options.batchWindowMs, flushPending);
        batch.items.push(item);
        batch.ids.add(id);
        pending.set(subscription.notificationUrl, batch);
      }
    },
    emitLifecycle: emit,
  };
}
