/**
 * @module A round-robin HTTP balancer over the live replicas, behind the drill's webhook gate: the
 * gate plays the load balancer's health (503, refused), this spreads deliveries over replicas.
 */

/** A running balancer. */
export type Balancer = {
  url: string;
  /** Requests answered by each backend URL. */
  readonly served: Map<string, number>;
  close(): Promise<void>;
};

// Hop-by-hop and length headers belong to each connection, not to the forwarded request.
const DROPPED = new Set(["host", "connection", "content-length", "transfer-encoding"]);

/** Starts the balancer on a free loopback port; `backends()` is asked on every request. */
export function startBalancer(backends: () => readonly string[]): Balancer {
  const served = new Map<string, number>();
  let turn = 0;
  const abort = new AbortController();

  async function handle(request: Request): Promise<Response> {
    const live = backends();
    if (live.length === 0) return new Response("no live replica", { status: 502 });
    const target = live[turn++ % live.length];
    const url = new URL(request.url);
    const headers = new Headers();
    for (const [key, value] of request.headers) if (!DROPPED.has(key)) headers.set(key, value);
    const body = request.method === "GET" || request.method === "HEAD"
      ? undefined
      : await request.text();
    try {
      const answer = await fetch(`${target}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(10_000),
      });
      const text = await answer.text();
      served.set(target, (served.get(target) ?? 0) + 1);
      const out = new Headers();
      for (const name of ["content-type", "retry-after"]) {
        const value = answer.headers.get(name);
        if (value) out.set(name, value);
      }
      return new Response(text, { status: answer.status, headers: out });
    } catch {
      // The replica died mid-request (SIGKILL): a real balancer answers 502 too.
      return new Response("backend unreachable", { status: 502 });
    }
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: abort.signal, onListen() {} },
    handle,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    served,
    async close() {
      abort.abort();
      await server.finished;
    },
  };
}
