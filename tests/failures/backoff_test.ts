import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { backoffDelayMs } from "../../src/failures/backoff.ts";

Deno.test("backoffDelayMs() grows exponentially with the attempt", () => {
  const at = (attempt: number) =>
    backoffDelayMs({ attempt, baseMs: 1_000, maxMs: 1_000_000, random: 1 - Number.EPSILON });
  assertEquals([1, 2, 3, 4].map(at), [1_000, 2_000, 4_000, 8_000]);
});

Deno.test("backoffDelayMs() jitters between half and all of the ceiling", () => {
  for (let i = 0; i < 200; i++) {
    const delay = backoffDelayMs({
      attempt: 3,
      baseMs: 1_000,
      maxMs: 60_000,
      random: Math.random(),
    });
    assert(delay >= 2_000 && delay <= 4_000, `delay ${delay} outside [2000, 4000]`);
  }
  assertEquals(backoffDelayMs({ attempt: 3, baseMs: 1_000, maxMs: 60_000, random: 0 }), 2_000);
});

Deno.test("backoffDelayMs() never exceeds the maximum without a Retry-After", () => {
  for (const attempt of [10, 30, 60, 1_000]) {
    const delay = backoffDelayMs({ attempt, baseMs: 500, maxMs: 30_000, random: 0.999 });
    assert(delay <= 30_000, `attempt ${attempt} gave ${delay}`);
  }
});

Deno.test("backoffDelayMs() never returns less than Retry-After, even above the maximum", () => {
  assertEquals(
    backoffDelayMs({ attempt: 1, baseMs: 100, maxMs: 1_000, retryAfterMs: 120_000, random: 0 }),
    120_000,
  );
  assertEquals(
    backoffDelayMs({ attempt: 1, baseMs: 10_000, maxMs: 60_000, retryAfterMs: 1_000, random: 0 }),
    5_000,
  );
});

Deno.test("backoffDelayMs() rejects nonsense input with a clear message", () => {
  assertThrows(
    () => backoffDelayMs({ attempt: 0, baseMs: 1, maxMs: 2 }),
    RangeError,
    "'attempt' must be a positive integer: current value is 0",
  );
  assertThrows(() => backoffDelayMs({ attempt: 1, baseMs: 5, maxMs: 2 }), RangeError, "maxMs");
});
