/**
 * @module Outbound webhook delivery for the fake providers: one POST per attempt, timeouts, backoff
 * retries, and tracking so tests can wait for quiet and `close()` leaves no timers or fetches behind.
 */

/** What one delivery attempt ended with: an HTTP status, a network error or a timeout. */
export type DeliveryOutcome = number | "error" | "timeout";

/** The answer of one POST, with the body text (validation handshakes compare it). */
export type PostResult =
  | { status: number; text: string; contentType: string }
  | "error"
  | "timeout";

/** How a provider retries one kind of delivery. */
export type DeliveryPolicy = {
  maxAttempts: number;
  baseDelayMs: number;
  timeoutMs: number;
  isSuccess(status: number): boolean;
  isRetryable(outcome: DeliveryOutcome): boolean;
};

/** One message to deliver; `onAttempt` sees every attempt, `onGiveUp` only retry exhaustion. */
export type DeliveryJob = {
  url: string;
  headers: Record<string, string>;
  body: string;
  onAttempt(attempt: number, outcome: DeliveryOutcome): void;
  onGiveUp?(): void;
};

/** Sends webhook deliveries and tracks everything in flight. */
export type Deliverer = {
  send(job: DeliveryJob, policy: DeliveryPolicy): void;
  post(
    url: string,
    init: { headers: Record<string, string>; body: string },
    timeoutMs: number,
  ): Promise<PostResult>;
  schedule(delayMs: number, task: () => void): void;
  flush(): Promise<void>;
  close(): Promise<void>;
};

/** Checks a delivery policy so a misconfigured fake fails at start, not mid-test. */
export function checkPolicy(name: string, policy: DeliveryPolicy): DeliveryPolicy {
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new RangeError(
      `Cannot deliver ${name} as 'maxAttempts' must be a positive integer: current value is ${policy.maxAttempts}`,
    );
  }
  for (const key of ["baseDelayMs", "timeoutMs"] as const) {
    if (!(policy[key] >= 0)) {
      throw new RangeError(
        `Cannot deliver ${name} as '${key}' must be a non-negative number: current value is ${
          policy[key]
        }`,
      );
    }
  }
  return policy;
}

/** Creates a deliverer whose timers and fetches all stop on `close()`. */
export function createDeliverer(): Deliverer {
  const closing = new AbortController();
  const inFlight = new Set<Promise<void>>();

  function track(work: Promise<void>): void {
    const tracked = work.catch((error) => console.error("Fake delivery failed:", error))
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (closing.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        closing.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      closing.signal.addEventListener("abort", done, { once: true });
    });
  }

  async function post(
    url: string,
    init: { headers: Record<string, string>; body: string },
    timeoutMs: number,
  ): Promise<PostResult> {
    if (closing.signal.aborted) return "error";
    const attempt = new AbortController();
    let timedOut = false;
    const stop = () => attempt.abort();
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort();
    }, timeoutMs);
    closing.signal.addEventListener("abort", stop, { once: true });
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: init.headers,
        body: init.body,
        signal: attempt.signal,
        redirect: "manual",
      });
      // The whole answer counts towards the provider's deadline, body included.
      const text = await response.text();
      return {
        status: response.status,
        text,
        contentType: response.headers.get("content-type") ?? "",
      };
    } catch {
      return timedOut ? "timeout" : "error";
    } finally {
      clearTimeout(timer);
      closing.signal.removeEventListener("abort", stop);
    }
  }

  async function run(job: DeliveryJob, policy: DeliveryPolicy): Promise<void> {
    for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
      if (closing.signal.aborted) return;
      const result = await post(job.url, job, policy.timeoutMs);
      if (closing.signal.aborted) return;
      const outcome: DeliveryOutcome = typeof result === "string" ? result : result.status;
      job.onAttempt(attempt, outcome);
      if (typeof outcome === "number" && policy.isSuccess(outcome)) return;
      if (!policy.isRetryable(outcome)) return;
      if (attempt === policy.maxAttempts) break;
      await sleep(policy.baseDelayMs * 2 ** (attempt - 1));
    }
    if (!closing.signal.aborted) job.onGiveUp?.();
  }

  return {
    send(job, policy) {
      if (!closing.signal.aborted) track(run(job, policy));
    },
    post,
    schedule(delayMs, task) {
      if (closing.signal.aborted) return;
      track(
        sleep(delayMs).then(() => {
          if (!closing.signal.aborted) task();
        }),
      );
    },
    async flush() {
      // Deliveries can enqueue follow-ups (retries, lifecycle events), so wait until truly quiet.
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async close() {
      closing.abort();
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
