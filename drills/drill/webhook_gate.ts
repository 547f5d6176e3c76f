/**
 * @module The daemon's public webhook address: an HTTP reverse proxy in front of it that can answer
 * 503 itself (a load balancer with no healthy backend) or refuse connections (nothing listening).
 */

/** pass: forward to the daemon; unavailable: answer 503; refuse: stop listening. */
export type GateMode = "pass" | "unavailable" | "refuse";

/** One request the gate received, and how it was answered. */
export type GateRequest = {
  at: number;
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  body: string;
  mode: GateMode;
  /** The answer the caller got (the daemon's, or the gate's own 503); 0 while pending. */
  status: number;
  /** How long the answer took, the daemon's processing included (ms). */
  durationMs: number;
};

/** A running gate. */
export type WebhookGate = {
  /** The public base URL to give the daemon as `CALSYNC_PUBLIC_URL`. */
  url: string;
  readonly requests: GateRequest[];
  /** Sets where `pass` forwards to (the daemon's own URL, known once it listens). */
  setTarget(url: string): void;
  setMode(mode: GateMode): Promise<void>;
  mode(): GateMode;
  /** Sends a copy of an earlier request through the gate, as a provider redelivery would. */
  replay(request: GateRequest): Promise<number | "error">;
  close(): Promise<void>;
};

// Hop-by-hop and length headers are the proxy's own business, not the daemon's.
const DROPPED = new Set(["host", "connection", "content-length", "transfer-encoding"]);

/** Starts the gate on a free loopback port in `pass` mode. */
export function startWebhookGate(): WebhookGate {
  const requests: GateRequest[] = [];
  let target: string | null = null;
  let mode: GateMode = "pass";
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let abort: AbortController | null = null;

  async function forward(request: Request, url: URL, body: string): Promise<Response> {
    if (target === null) return new Response("no backend", { status: 502 });
    const headers = new Headers();
    for (const [key, value] of request.headers) if (!DROPPED.has(key)) headers.set(key, value);
    try {
      const answer = await fetch(`${target}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body: request.method === "GET" || request.method === "HEAD" ? undefined : body,
        redirect: "manual",
      });
      const text = await answer.text();
      const out = new Headers();
      const type = answer.headers.get("content-type");
      if (type) out.set("content-type", type);
      return new Response(text, { status: answer.status, headers: out });
    } catch {
      return new Response("backend unreachable", { status: 502 });
    }
  }

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const body = await request.text();
    const record: GateRequest = {
      at: Date.now(),
      method: request.method,
      path: url.pathname,
      search: url.search,
      headers: Object.fromEntries(request.headers),
      body,
      mode,
      status: 0,
      durationMs: 0,
    };
    requests.push(record);
    const started = performance.now();
    const response = mode === "pass"
      ? await forward(request, url, body)
      : new Response(JSON.stringify({ error: "service_unavailable" }), {
        status: 503,
        headers: { "content-type": "application/json", "retry-after": "1" },
      });
    record.status = response.status;
    record.durationMs = performance.now() - started;
    return response;
  }

  function listen(port: number): Deno.HttpServer<Deno.NetAddr> {
    abort = new AbortController();
    return Deno.serve({ hostname: "127.0.0.1", port, signal: abort.signal, onListen() {} }, handle);
  }

  async function stopListening(): Promise<void> {
    if (!server || !abort) return;
    const current = server;
    abort.abort();
    await current.finished;
    server = null;
    abort = null;
  }

  server = listen(0);
  const port = server.addr.port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    requests,
    setTarget(next) {
      target = next.replace(/\/$/, "");
    },
    async setMode(next) {
      mode = next;
      if (next === "refuse") await stopListening();
      else if (server === null) server = listen(port);
    },
    mode: () => mode,
    async replay(request) {
      const headers = new Headers();
      for (const [key, value] of Object.entries(request.headers)) {
        if (!DROPPED.has(key)) headers.set(key, value);
      }
      try {
        const response = await fetch(`${url}${request.path}${request.search}`, {
          method: request.method,
          headers,
          body: request.body,
          signal: AbortSignal.timeout(5_000),
        });
        await response.body?.cancel();
        return response.status;
      } catch {
        return "error";
      }
    },
    async close() {
      await stopListening();
    },
  };
}
