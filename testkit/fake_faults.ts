/**
 * @module Shared fault model, request log and loopback listener behind the fake provider servers.
 */

/** A failure the fake injects instead of its normal answer. */
export type Fault =
  | {
    kind: "status";
    status: number;
    retryAfter?: string;
    body?: unknown;
    /** Provider error reason/code to put in the default body (e.g. Google `userRateLimitExceeded`). */
    reason?: string;
  }
  | { kind: "hang" }
  | { kind: "malformed"; variant?: "shape" | "truncated" }
  | { kind: "invalid_grant" }
  | { kind: "gone"; code?: "syncStateNotFound" | "resyncRequired" };

/** Which endpoints a fault hits: api = event listing/delta, token = OAuth, push = watch/subscriptions. */
export type FaultTarget = "api" | "token" | "push" | "all";

/** The endpoint class of one request, as matched against a {@link FaultTarget}. */
export type FaultEndpoint = Exclude<FaultTarget, "all">;

/**
 * Options of `setFault`: where the fault applies and for how many matching requests; `calendar`
 * limits it to requests for that calendar (other calendars' syncs must not use it up).
 */
export type SetFaultOptions = { target?: FaultTarget; times?: number; calendar?: string };

/** One request the fake received; `status` stays 0 while pending and for hung requests. */
export type RecordedRequest = {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  status: number;
  at: number;
};

/** Controls every fake provider server exposes. */
export type FakeServerControls = {
  readonly port: number;
  readonly requests: RecordedRequest[];
  setFault(fault: Fault | null, options?: SetFaultOptions): void;
  refuseConnections(refuse: boolean): Promise<void>;
  countRequests(filter?: (request: RecordedRequest) => boolean): number;
  resetRequests(): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** What a fake's route handler gets from its host besides the public controls. */
export type FakeHost = {
  readonly controls: FakeServerControls;
  readonly origin: string;
  takeFault(
    endpoint: FaultEndpoint,
    applies: (fault: Fault) => boolean,
    calendar?: string,
  ): Fault | null;
  hang(): Promise<Response>;
  onClose(cleanup: () => Promise<void> | void): void;
};

/** Handles one request for a fake host. */
export type FakeHandler = (request: Request, url: URL) => Promise<Response> | Response;

type FaultEntry = {
  fault: Fault;
  target: FaultTarget;
  remaining: number | null;
  calendar: string | null;
};

/** Answers `body` as JSON with the given status and extra headers. */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=UTF-8", ...headers },
  });
}

/** Answers a raw (possibly invalid) JSON text with status 200, for `malformed` faults. */
export function rawJsonResponse(text: string): Response {
  return new Response(text, { headers: { "content-type": "application/json; charset=UTF-8" } });
}

/** Validates `times` and builds the fault entry `setFault` stores. */
function faultEntry(fault: Fault, options: SetFaultOptions): FaultEntry {
  const times = options.times;
  if (times !== undefined && (!Number.isInteger(times) || times < 1)) {
    throw new RangeError(
      `Cannot set fault as 'times' must be a positive integer: current value is ${times}`,
    );
  }
  // invalid_grant only exists on the token endpoint, so that is its natural default.
  const target = options.target ?? (fault.kind === "invalid_grant" ? "token" : "api");
  return { fault, target, remaining: times ?? null, calendar: options.calendar ?? null };
}

/** Starts a loopback HTTP listener with fault injection, a request log and hang support. */
export function startFakeHost(handler: FakeHandler, options: { port?: number } = {}): FakeHost {
  const requests: RecordedRequest[] = [];
  const faults: FaultEntry[] = [];
  const hangs = new Set<() => void>();
  // Responses that release hung requests must not overwrite the recorded status of 0.
  const abandoned = new WeakSet<Response>();
  const cleanups: Array<() => Promise<void> | void> = [];
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let abort: AbortController | null = null;
  let closed = false;

  async function serve(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const record: RecordedRequest = {
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(request.headers),
      status: 0,
      at: Date.now(),
    };
    requests.push(record);
    let response: Response;
    try {
      response = await handler(request, url);
    } catch (error) {
      // A bug in the fake must be loud, not look like provider behaviour.
      console.error("Fake provider handler failed:", error);
      response = new Response("fake provider handler failed", { status: 500 });
    }
    if (!abandoned.has(response)) record.status = response.status;
    return response;
  }

  function listen(port: number): Deno.HttpServer<Deno.NetAddr> {
    abort = new AbortController();
    return Deno.serve(
      { hostname: "127.0.0.1", port, signal: abort.signal, onListen() {} },
      serve,
    );
  }

  async function stopListening(): Promise<void> {
    if (!server || !abort) return;
    const current = server;
    // Aborting drops open connections, so hung clients see a reset instead of a late answer.
    abort.abort();
    for (const release of [...hangs]) release();
    await current.finished;
    server = null;
    abort = null;
  }

  server = listen(options.port ?? 0);
  const port = server.addr.port;

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await stopListening();
  }

  const controls: FakeServerControls = {
    port,
    requests,
    setFault(fault, faultOptions = {}) {
      if (fault === null) {
        const target = faultOptions.target;
        const kept = target ? faults.filter((entry) => entry.target !== target) : [];
        faults.splice(0, faults.length, ...kept);
        return;
      }
      const entry = faultEntry(fault, faultOptions);
      const kept = faults.filter((existing) => existing.target !== entry.target);
      faults.splice(0, faults.length, ...kept, entry);
    },
    async refuseConnections(refuse) {
      if (closed) throw new Error("Cannot change connection refusal: the fake server is closed");
      if (refuse) return await stopListening();
      if (!server) server = listen(port);
    },
    countRequests(filter) {
      return filter ? requests.filter(filter).length : requests.length;
    },
    resetRequests() {
      requests.length = 0;
    },
    close,
    [Symbol.asyncDispose]: close,
  };

  return {
    controls,
    origin: `http://127.0.0.1:${port}`,
    takeFault(endpoint, applies, calendar) {
      for (let i = faults.length - 1; i >= 0; i--) {
        const entry = faults[i];
        if (entry.target !== endpoint && entry.target !== "all") continue;
        if (entry.calendar !== null && entry.calendar !== calendar) continue;
        if (!applies(entry.fault)) continue;
        if (entry.remaining !== null && --entry.remaining === 0) faults.splice(i, 1);
        return entry.fault;
      }
      return null;
    },
    hang() {
      return new Promise<Response>((resolve) => {
        const release = () => {
          hangs.delete(release);
          const response = new Response(null, { status: 504 });
          abandoned.add(response);
          resolve(response);
        };
        hangs.add(release);
      });
    },
    onClose(cleanup) {
      cleanups.push(cleanup);
    },
  };
}
