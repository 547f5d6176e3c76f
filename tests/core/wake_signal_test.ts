import { assertEquals } from "../support/assert.ts";
import { createWakeSignal } from "../../src/core/wake_signal.ts";

Deno.test("a wake-up that lands before the wait is not lost", async () => {
  const stop = new AbortController();
  const signal = createWakeSignal(stop.signal);
  signal.wake();
  // An hour-long wait resolves at once: the test would time out otherwise.
  await signal.wait(3_600_000);
});

Deno.test("reset() forgets earlier wake-ups; a later wake() ends the wait", async () => {
  const stop = new AbortController();
  const signal = createWakeSignal(stop.signal);
  signal.wake();
  signal.reset();
  let resolved = false;
  const waiting = signal.wait(3_600_000).then(() => resolved = true);
  await Promise.resolve();
  assertEquals(resolved, false);
  signal.wake();
  await waiting;
  assertEquals(resolved, true);
});

Deno.test("stopping resolves every wait and leaves no timer behind", async () => {
  const stop = new AbortController();
  const signal = createWakeSignal(stop.signal);
  const waiting = signal.wait(3_600_000);
  stop.abort();
  await waiting;
  await signal.wait(3_600_000);
});
