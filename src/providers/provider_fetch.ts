/** @module Provider HTTP calls with deadlines; transport problems become classified failures. */
import { classifyResponse } from "../failures/classify.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { ProviderKind } from "../core/provider_kind.ts";

/** The fetch function adapters use; injectable for tests. */
export type FetchFn = typeof fetch;

/** Options for one provider request. */
export type ProviderRequest = {
  provider: ProviderKind;
  timeoutMs: number;
  signal: AbortSignal;
  fetch?: FetchFn;
  /** The largest answer read; a provider page is a few megabytes at most. */
  maxBodyBytes?: number;
};

const MAX_ERROR_BODY = 16_384;

/** The default cap on a provider answer's body. */
export const MAX_PROVIDER_BODY_BYTES = 33_554_432;

/**
 * Fetches and returns the parsed JSON of a 2xx answer. Anything else throws a SyncFailure:
 * the response classified, or `timeout`/`network` for transport problems. The deadline covers
 * reading the body too, so a provider that stalls mid-body cannot hold a lease. Redirects are not
 * followed (a provider API never redirects; following one would send the bearer token elsewhere),
 * and a body beyond `maxBodyBytes` is refused while it streams, before it fills memory.
 */
export async function fetchProviderJson(
  url: string,
  init: RequestInit,
  options: ProviderRequest,
): Promise<unknown> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = AbortSignal.any([options.signal, timeout]);
  const doFetch = options.fetch ?? fetch;
  try {
    const response = await doFetch(url, { ...init, signal, redirect: "manual" });
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new SyncFailure({
        kind: "malformed_response",
        status: response.status,
        message: `${options.provider} answered HTTP ${response.status} (a redirect); not followed`,
      });
    }
    const text = await readCapped(
      response,
      options.maxBodyBytes ?? MAX_PROVIDER_BODY_BYTES,
      options,
    );
    if (!response.ok) {
      throw classifyResponse({
        provider: options.provider,
        status: response.status,
        retryAfter: response.headers.get("retry-after"),
        body: text.slice(0, MAX_ERROR_BODY),
      });
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new SyncFailure({
        kind: "malformed_response",
        status: response.status,
        message:
          `${options.provider} answered HTTP ${response.status} with a body that is not JSON`,
      });
    }
  } catch (error) {
    if (error instanceof SyncFailure) throw error;
    if (options.signal.aborted) {
      throw new SyncFailure({ kind: "internal", message: "Sync cancelled" }, { cause: error });
    }
    if (timeout.aborted) {
      throw new SyncFailure(
        {
          kind: "timeout",
          message: `${options.provider} did not answer within ${options.timeoutMs} ms`,
        },
        { cause: error },
      );
    }
    throw new SyncFailure(
      {
        kind: "network",
        message: `Cannot reach ${options.provider}: ${describeFetchError(error)}`,
      },
      { cause: error },
    );
  }
}

/** Reads a body as text, refusing it once it passes `max` bytes. */
async function readCapped(
  response: Response,
  max: number,
  options: ProviderRequest,
): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw new SyncFailure({
        kind: "malformed_response",
        status: response.status,
        message: `${options.provider} answered a body larger than ${max} bytes`,
      });
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return new TextDecoder().decode(bytes);
}

/** Deno's fetch says only "fetch failed"; the reason (refused, reset, DNS) is in `cause`. */
function describeFetchError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : "";
  return cause && !message.includes(cause) ? `${message}: ${cause}` : message;
}
