/** @module The subscriber outage drill's checks over what the receiver saw: pure, unit-tested. */
import type { Received } from "../../testkit/subscriber_receiver.ts";
import { replayChanges, type ReplayedMirror } from "../../src/feed/replay.ts";

/** One check's verdict. */
export type Check = { name: string; pass: boolean; detail: string };

/**
 * Every change delivered (a 2xx for each seq in `expected`), in order (attempts never go back,
 * and a new seq only follows a 2xx), duplicates only as the same message (same webhook-id and
 * body), every signature valid, and Retry-After honoured after each 429.
 */
export function checkDeliveries(
  received: readonly Received[],
  expected: readonly number[],
  retryAfterMs: number,
): Check[] {
  const delivered = received.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.seq);
  const missing = expected.filter((seq) => !delivered.includes(seq));
  const order: string[] = [];
  for (let i = 1; i < received.length; i++) {
    const [before, now] = [received[i - 1], received[i]];
    const okBefore = before.status >= 200 && before.status < 300;
    if (now.seq < before.seq || (now.seq > before.seq && !okBefore)) {
      order.push(`${before.seq}(${before.status}) then ${now.seq}`);
    }
  }
  const bySeq = new Map<number, Received[]>();
  for (const r of received) bySeq.set(r.seq, [...bySeq.get(r.seq) ?? [], r]);
  const changed = [...bySeq.entries()].filter(([, attempts]) =>
    attempts.some((a) => a.id !== attempts[0].id || a.body !== attempts[0].body)
  ).map(([seq]) => seq);
  const unsigned = received.filter((r) => !r.verified.some(Boolean)).length;
  const early =
    received.slice(1).filter((r, i) =>
      received[i].status === 429 && r.at - received[i].at < retryAfterMs
    ).length;
  const after429 = received.slice(1).filter((_, i) => received[i].status === 429).length;
  const failures = received.filter((r) => r.status >= 500).length;
  return [
    {
      name: "every change delivered",
      pass: missing.length === 0 && expected.length > 0,
      detail: `${expected.length} changes, ${missing.length} never acknowledged` +
        (missing.length ? `: ${missing.slice(0, 10).join(", ")}` : ""),
    },
    {
      name: "in sequence order",
      pass: order.length === 0,
      detail: order.length ? order.slice(0, 5).join("; ") : `${received.length} attempts in order`,
    },
    {
      name: "duplicates only with the same webhook-id",
      pass: changed.length === 0,
      detail: `${received.length - bySeq.size} repeats` +
        (changed.length ? `; changed id or body for ${changed.join(", ")}` : ""),
    },
    {
      name: "signatures verify (standardwebhooks)",
      pass: unsigned === 0,
      detail: `${received.length - unsigned} of ${received.length} verified`,
    },
    {
      name: "503 retried, Retry-After honoured",
      pass: early === 0 && after429 > 0 && failures > 0,
      detail: `${failures} answers 5xx; ${after429} retries after 429, ${early} sooner than ` +
        `${retryAfterMs} ms`,
    },
  ];
}

/**
 * What the subscriber was told adds up to the mirror: its acknowledged messages, replayed in
 * order from the first change, hold exactly the occurrences the mirror holds. A change the
 * outbox lost (or a message never sent) leaves the subscriber believing in a different calendar.
 */
export function checkReplayEqualsMirror(
  received: readonly Received[],
  mirrorKeys: readonly string[],
): Check {
  const acknowledged = new Map<number, Received>();
  for (const r of received) if (r.status >= 200 && r.status < 300) acknowledged.set(r.seq, r);
  const changes = [...acknowledged.entries()].sort(([a], [b]) => a - b).map(([, r]) =>
    (JSON.parse(r.body) as { data: Parameters<typeof replayChanges>[1][number] }).data
  );
  const replayed: ReplayedMirror = new Map();
  let problem = "";
  try {
    replayChanges(replayed, changes, 0);
  } catch (error) {
    problem = `; ${(error as Error).message}`;
  }
  const mirror = new Set(mirrorKeys);
  const missing = [...mirror].filter((key) => !replayed.has(key)).length;
  const extra = [...replayed.keys()].filter((key) => !mirror.has(key)).length;
  return {
    name: "the delivered changes replay to the mirror",
    pass: problem === "" && missing === 0 && extra === 0,
    detail: `${replayed.size} occurrences replayed, ${mirror.size} in the mirror: ${missing} ` +
      `never announced, ${extra} announced but not there${problem}`,
  };
}
