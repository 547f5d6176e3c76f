/** @module Minimal assertions (JSR's @std/assert is unreachable from our machines). */
import { deepStrictEqual } from "node:assert";

/** Raised by a failed assertion. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Fails unless `condition` is truthy. */
export function assert(condition: unknown, message = "Assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Fails unless `actual` deep-equals `expected`. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  try {
    deepStrictEqual(actual, expected);
  } catch {
    throw new AssertionError(
      `${message ? message + ": " : ""}expected ${show(expected)}, got ${show(actual)}`,
    );
  }
}

/** Fails unless `fn` throws an instance of `type` whose message includes `includes`. */
export function assertThrows(
  fn: () => unknown,
  type?: new (...args: never[]) => Error,
  includes?: string,
): Error {
  try {
    fn();
  } catch (error) {
    checkError(error, type, includes);
    return error as Error;
  }
  throw new AssertionError("Expected the function to throw");
}

/** Async variant of assertThrows. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  type?: new (...args: never[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    checkError(error, type, includes);
    return error as Error;
  }
  throw new AssertionError("Expected the promise to reject");
}

/** Fails unless `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, message?: string): void {
  if (!text.includes(part)) {
    throw new AssertionError(
      `${message ? message + ": " : ""}expected ${show(text)} to include ${show(part)}`,
    );
  }
}

function checkError(error: unknown, type?: new (...args: never[]) => Error, includes?: string) {
  if (type && !(error instanceof type)) {
    throw new AssertionError(`Expected ${type.name}, got ${show(error)}`);
  }
  if (includes && !(error instanceof Error && error.message.includes(includes))) {
    throw new AssertionError(
      `Expected message to include ${show(includes)}, got ${show((error as Error)?.message)}`,
    );
  }
}

function show(value: unknown): string {
  try {
    return typeof value === "string" ? JSON.stringify(value) : Deno.inspect(value, { depth: 4 });
  } catch {
    return String(value);
  }
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new AssertionError(
        `Timed out waiting for ${options.what ?? "condition"}${
          last ? `: ${(last as Error).message}` : ""
        }`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}
