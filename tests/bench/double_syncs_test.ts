import { assertEquals, assertThrows } from "../support/assert.ts";
import { countDoubleSyncs } from "../../bench/double_syncs.ts";
import type { RecordedRequest } from "../../testkit/fake_faults.ts";

const T0 = Date.parse("2026-12-03T10:00:00.000Z");

function success(connection: string, at: { committed: number; written: number; ms: number }) {
  return {
    category: "calsync.sync",
    message: `Sync of connection ${connection} succeeded`,
    connection_id: connection,
    duration_ms: at.ms,
    committed_at: new Date(T0 + at.committed).toISOString(),
    time: new Date(T0 + at.written).toISOString(),
  };
}

function listed(calendar: string): RecordedRequest {
  return {
    method: "GET",
    path: `/calendars/${calendar}/events`,
    query: {},
    headers: {},
    status: 200,
    at: T0,
  };
}

Deno.test("a run whose line is written after the next run started is not counted concurrent", () => {
  // Run one commits at +10 ms and logs at +30 ms (the gate settled in between); run two was
  // claimed after that commit and started at +15 ms.
  const found = countDoubleSyncs({
    logs: [
      success("a", { committed: 10, written: 30, ms: 10 }),
      success("a", { committed: 25, written: 26, ms: 10 }),
    ],
    requests: [listed("cal-a"), listed("cal-a")],
    expected: 1,
  });
  assertEquals(found, { concurrent: 0, repeated: 1, syncs: 2, listed: 1 });
});

Deno.test("two runs of one connection that overlap before their commits are concurrent", () => {
  const found = countDoubleSyncs({
    logs: [
      success("a", { committed: 10, written: 11, ms: 10 }),
      success("a", { committed: 14, written: 15, ms: 10 }),
      success("b", { committed: 10, written: 11, ms: 10 }),
    ],
    requests: [listed("cal-a"), listed("cal-b")],
    expected: 2,
  });
  assertEquals(found, { concurrent: 1, repeated: 1, syncs: 3, listed: 2 });
});

Deno.test("a success line without its commit time is not a sync the check can date", () => {
  const { committed_at: _, ...undated } = success("a", { committed: 10, written: 11, ms: 10 });
  assertThrows(
    () => countDoubleSyncs({ logs: [undated], requests: [listed("cal-a")], expected: 1 }),
    Error,
    "Expected 1 syncs; saw 0 success log lines",
  );
});
