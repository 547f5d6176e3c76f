/** Deliveries that arrive together share a statement, and each keeps its own deadline. */
import { DatabaseDeadlineError, DatabaseQueueFullError } from "../../src/core/errors.ts";
import { createGatedBatches, type GatedBatchesOptions } from "../../src/storage/gated_batches.ts";
import { createWorkGate, type ShedReason, type WorkScope } from "../../src/storage/work_gate.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";

/** A flush whose batches wait until the test lets each of them finish. */
function heldFlush() {
  const batches: { items: string[]; scope: WorkScope; done: PromiseWithResolvers<void> }[] = [];
  const started = [Promise.withResolvers<void>()];
  const flush = async (items: string[], scope: WorkScope) => {
    const done = Promise.withResolvers<void>();
    batches.push({ items, scope, done });
    started.at(-1)!.resolve();
    started.push(Promise.withResolvers<void>());
    await done.promise;
    return items.map((item) => item.toUpperCase());
  };
  /** Resolves once batch `n` (from 0) has reached the flush. */
  const reached = async (n: number) => {
    while (batches.length <= n) await started.at(-1)!.promise;
    return batches[n];
  };
  return { flush, batches, reached };
}

function gate(shed: ShedReason[] = []) {
  return createWorkGate({ maxConcurrent: 4, maxQueued: 4, onShed: (r) => shed.push(r) });
}

/** A batcher over `held` (batches of 8, 8 queued, a gate of its own) with `overrides`. */
function batcher(
  held: ReturnType<typeof heldFlush>,
  overrides: Partial<GatedBatchesOptions<string, string>> = {},
) {
  return createGatedBatches({
    gate: gate(),
    what: "Recording",
    maxBatch: 8,
    maxQueued: 8,
    flush: held.flush,
    ...overrides,
  });
}

Deno.test("an item alone goes out at once; items behind a batch in flight share the next one", async () => {
  const held = heldFlush();
  const sizes: number[] = [];
  const batches = batcher(held, { maxBatch: 2, onBatch: (size) => sizes.push(size) });
  const a = batches.submit("a", 5_000);
  const first = await held.reached(0);
  const rest = ["b", "c", "d"].map((item) => batches.submit(item, 5_000));
  first.done.resolve();
  assertEquals(await a, "A");
  (await held.reached(1)).done.resolve();
  (await held.reached(2)).done.resolve();
  assertEquals(await Promise.all(rest), ["B", "C", "D"]);
  assertEquals(held.batches.map((batch) => batch.items), [["a"], ["b", "c"], ["d"]]);
  assertEquals(sizes, [1, 2, 1]);
});

Deno.test("an item still queued at its deadline is dropped before it reaches the database", async () => {
  const shed: ShedReason[] = [];
  const lengths: number[] = [];
  const held = heldFlush();
  const batches = batcher(held, {
    gate: gate(shed),
    maxQueued: 1,
    onShed: (r) => shed.push(r),
    onQueueLength: (n) => lengths.push(n),
  });
  const a = batches.submit("a", 60_000);
  const first = await held.reached(0);
  const late = batches.submit("late", 30);
  await assertRejects(() => batches.submit("full", 60_000), DatabaseQueueFullError);
  await assertRejects(() => late, DatabaseDeadlineError, "waited 30 ms for a batch");
  first.done.resolve();
  assertEquals(await a, "A");
  assertEquals(held.batches.map((batch) => batch.items), [["a"]]);
  assertEquals(shed, ["queue_full", "deadline"]);
  assertEquals(lengths, [1, 0, 1, 0]);
});

Deno.test("a batch runs under its earliest deadline, and every item of a failed batch fails", async () => {
  const held = heldFlush();
  const batches = batcher(held);
  const a = batches.submit("a", 60_000);
  const first = await held.reached(0);
  const soon = batches.submit("soon", 1_000);
  const later = batches.submit("later", 60_000);
  const submitted = Date.now();
  first.done.resolve();
  await a;
  const second = await held.reached(1);
  assertEquals(second.items, ["soon", "later"]);
  // The gate aborts the batch at the earliest deadline and stops it writing soon after.
  assert(second.scope.notAfter.getTime() < submitted + 60_000, "notAfter is the earliest item's");
  const aborted = Promise.withResolvers<void>();
  second.scope.signal.addEventListener("abort", () => aborted.resolve());
  await aborted.promise;
  await assertRejects(() => soon, DatabaseDeadlineError);
  await assertRejects(() => later, DatabaseDeadlineError);
  second.done.resolve();
  // The batcher goes on with the next item.
  const next = batches.submit("next", 5_000);
  (await held.reached(2)).done.resolve();
  assertEquals(await next, "NEXT");
});

Deno.test("a batch shed at its earliest deadline before reaching the database retries the others", async () => {
  const held = heldFlush();
  const shared = createWorkGate({ maxConcurrent: 1, maxQueued: 4 });
  const batches = batcher(held, { gate: shared });
  const a = batches.submit("a", 60_000);
  const first = await held.reached(0);
  const soon = batches.submit("soon", 40);
  const later = batches.submit("later", 60_000);
  // Other work takes the only slot as the first batch gives it back.
  const other = Promise.withResolvers<string>();
  const otherWork = shared.run("lookup", 60_000, () => other.promise);
  first.done.resolve();
  assertEquals(await a, "A");
  await assertRejects(() => soon, DatabaseDeadlineError);
  other.resolve("done");
  await otherWork;
  (await held.reached(1)).done.resolve();
  assertEquals(await later, "LATER");
  assertEquals(held.batches.map((batch) => batch.items), [["a"], ["later"]]);
});
