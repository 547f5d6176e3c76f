/** @module A real HTTP receiver for webhook deliveries, verifying them with standardwebhooks. */
import { Webhook } from "standardwebhooks";

/** One request as received, and whether each secret verified it. */
export type Received = {
  /** Date.now() when it arrived. */
  at: number;
  status: number;
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  seq: number;
  verified: boolean[];
};

/** What the receiver answers the next requests (then 200 for ever). */
export type Answer = { status: number; retryAfter?: string; hold?: Promise<void> };

/** A running receiver. */
export type Receiver = {
  url: string;
  received: Received[];
  /** Queues answers for the next requests. */
  answer(...answers: Answer[]): void;
  /** What to answer once the queue is empty (default 200). */
  fallback: Answer;
  /** The secrets every request is verified with (set after the subscriber is added). */
  secrets: string[];
  close(): Promise<void>;
};

/** Starts a receiver on a free loopback port. */
export function startReceiver(): Receiver {
  const queue: Answer[] = [];
  const received: Received[] = [];
  const self: Receiver = {
    url: "",
    received,
    secrets: [],
    fallback: { status: 200 },
    answer: (...answers) => void queue.push(...answers),
    close: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.text();
    const headers = Object.fromEntries(req.headers);
    const verified = self.secrets.map((secret) => {
      try {
        new Webhook(secret).verify(body, headers);
        return true;
      } catch {
        return false;
      }
    });
    const next = queue.shift() ?? self.fallback;
    received.push({
      at: Date.now(),
      status: next.status,
      id: headers["webhook-id"],
      timestamp: headers["webhook-timestamp"],
      signature: headers["webhook-signature"],
      body,
      seq: JSON.parse(body).data.seq,
      verified,
    });
    if (next.hold) await next.hold;
    return new Response(null, {
      status: next.status,
      headers: next.retryAfter ? { "retry-after": next.retryAfter } : {},
    });
  });
  self.url = `http://127.0.0.1:${server.addr.port}/hook`;
  return self;
}
