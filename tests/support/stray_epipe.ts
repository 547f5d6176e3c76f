/**
 * @module Lets a test that cuts busy database connections tolerate one known library race
 * (`isStraySocketWrite` in src/storage/client.ts), and nothing else. The daemon's process guard
 * logs and counts that rejection and goes on; a test has no guard, so Deno would fail the whole
 * file. Any other unhandled rejection still does.
 */
import { isStraySocketWrite } from "../../src/storage/client.ts";

/** Tolerates stray socket-write rejections until disposed; `count()` says how many there were. */
export function tolerateStrayEpipe(): Disposable & { count(): number } {
  let count = 0;
  const onRejection = (event: PromiseRejectionEvent) => {
    if (!isStraySocketWrite(event.reason)) return;
    count++;
    event.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  return {
    count: () => count,
    [Symbol.dispose]: () => globalThis.removeEventListener("unhandledrejection", onRejection),
  };
}
