/** @module One signed POST of a message to a subscriber, classified. */
import { parseRetryAfter } from "../failures/retry_after.ts";
import { signedHeaders } from "./webhook_signature.ts";
import type { WebhookMessage } from "./webhook_message.ts";

/** How an attempt ended; everything but `success` is retried. */
export type SendResult =
  | { result: "success"; status: number }
  | {
    result: "rate_limited" | "server_error" | "client_error" | "timeout" | "network";
    status: number | null;
    retryAfterMs: number | null;
    message: string;
  };

/** What sending needs: a fetch, the deadline, the clock. */
export type SendDeps = {
  fetch?: typeof fetch;
  timeoutMs: number;
  now?: () => number;
  signal?: AbortSignal;
};

/** Signs (timestamp of this attempt, every valid secret) and POSTs `message` to `url`. */
export async function sendWebhook(
  deps: SendDeps,
  target: { url: string; secrets: readonly string[] },
  message: WebhookMessage,
): Promise<SendResult> {
  const now = deps.now?.() ?? Date.now();
  const headers = await signedHeaders(target.secrets, {
    id: message.id,
    timestamp: Math.floor(now / 1000),
    body: message.body,
  });
  const timeout = AbortSignal.timeout(deps.timeoutMs);
  const signal = deps.signal ? AbortSignal.any([timeout, deps.signal]) : timeout;
  try {
    const response = await (deps.fetch ?? fetch)(target.url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "user-agent": "calsync" },
      body: message.body,
      signal,
      redirect: "manual",
    });
    await response.body?.cancel().catch(() => {});
    const status = response.status;
    if (status >= 200 && status < 300) return { result: "success", status };
    return {
      result: status === 429 ? "rate_limited" : status >= 500 ? "server_error" : "client_error",
      status,
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after"), now),
      message: `The subscriber answered ${status}`,
    };
  } catch (error) {
    const timedOut = timeout.aborted;
    return {
      result: timedOut ? "timeout" : "network",
      status: null,
      retryAfterMs: null,
      message: timedOut
        ? `No answer within ${deps.timeoutMs} ms`
        : `Cannot reach the subscriber: ${(error as Error).message}`,
    };
  }
}
