/** @module A TCP proxy that injects network faults between the daemon and PostgreSQL (tests, outage drill). */

/**
 * What `cutWhen` does with the chunk that matched: drop it (default) or forward it, then cut; or
 * `reply`: forward it, hold back the server's answer until its ReadyForQuery (the statement ran),
 * then cut without passing the answer on, so the client can send nothing after it (no COMMIT).
 */
export type CutOptions = { after?: "forward" | "drop" | "reply" };

/** Counters since start: `resets` counts connections closed by `resetAll`, `cuts` those closed by `cutWhen`. */
export type FaultProxyStats = { open: number; accepted: number; cuts: number; resets: number };

/** A running fault proxy; every method is safe to call at any time, including after `close`. */
export type FaultProxy = {
  port: number;
  hostname: string;
  /** Returns `databaseUrl` with host and port pointing at the proxy. */
  url(databaseUrl: string): string;
  /** `true` stops listening (new connects get ECONNREFUSED); `false` listens again on the same port. */
  refuseNew(refuse: boolean): Promise<void>;
  /** Abruptly closes every open proxied connection on both sides. */
  resetAll(): void;
  /** Arms (synchronously) a cut of the next client->server chunk matching `pattern`; settles once cut or closed. */
  cutWhen(pattern: RegExp | string, options?: CutOptions): Promise<void>;
  /** `true` holds all traffic in both directions with sockets kept open; `false` releases it. */
  blackhole(on: boolean): void;
  /** Returns the current counters. */
  stats(): FaultProxyStats;
  /** Closes the listener and every connection, and waits until no operation is left running. */
  close(): Promise<void>;
};

/** Where to forward to, and where to listen (defaults: 127.0.0.1, an ephemeral port). */
export type FaultProxyOptions = {
  targetHostname: string;
  targetPort: number;
  listenPort?: number;
  hostname?: string;
};

type Link = {
  client: Deno.TcpConn;
  server: Deno.TcpConn | null;
  closed: boolean;
  /** A `reply` cut waiting for the server's answer on this link. */
  awaitingReply: ArmedCut | null;
};
type ArmedCut = {
  matches: (text: string) => boolean;
  after: "forward" | "drop" | "reply";
  resolve: () => void;
  reject: (error: Error) => void;
};

// 64 KiB holds any statement the daemon sends in one read, so per-chunk matching sees whole messages.
const CHUNK_SIZE = 64 * 1024;
// Browsers' "latin1" is windows-1252; either way every byte becomes one char, which is all matching needs.
const latin1 = new TextDecoder("latin1");
// ReadyForQuery ('Z', length 5, transaction status): the server flushes right after it, so it
// ends the chunk that completes a statement's answer.
const READY_FOR_QUERY = new RegExp(String.raw`Z\x00\x00\x00\x05[ITE]$`);

// Async although nothing is awaited, so a bad option or a busy port rejects rather than throws.
/** Starts a fault-injecting TCP proxy in front of `targetHostname:targetPort`. */
// deno-lint-ignore require-await
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { targetHostname, targetPort } = options;
  if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) {
    throw new RangeError(
      `Cannot start fault proxy as 'targetPort' must be a port number: current value is ${targetPort}`,
    );
  }
  const hostname = options.hostname ?? "127.0.0.1";
  let listener: Deno.TcpListener | null = Deno.listen({
    hostname,
    port: options.listenPort ?? 0,
    transport: "tcp",
  });
  const port = listener.addr.port;
  const links = new Set<Link>();
  const tasks = new Set<Promise<void>>();
  let armed: ArmedCut[] = [];
  let blackholed = false;
  // Pipes held by the blackhole wait on this; replaced on every toggle so each waiter wakes once.
  let release = Promise.withResolvers<void>();
  let closed = false;
  const counters = { accepted: 0, cuts: 0, resets: 0 };

  function track(task: Promise<void>): Promise<void> {
    tasks.add(task);
    const forget = () => tasks.delete(task);
    // Both handlers, so even an unexpected rejection is observed here and never goes unhandled.
    task.then(forget, forget);
    return task;
  }

  function closeLink(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    links.delete(link);
    // A reply cut whose link died first never saw the statement answered.
    link.awaitingReply?.reject(new Error("Cannot cut: the connection closed before the answer"));
    link.awaitingReply = null;
    for (const conn of [link.client, link.server]) {
      try {
        conn?.close();
      } catch {
        // Already closed by the peer's failure path; nothing left to release.
      }
    }
    // Wakes any pipe held by the blackhole so it can notice the link is gone and exit.
    release.resolve();
    release = Promise.withResolvers<void>();
  }

  async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
  }

  function takeCut(chunk: Uint8Array): ArmedCut | null {
    if (armed.length === 0) return null;
    const text = latin1.decode(chunk);
    const index = armed.findIndex((cut) => cut.matches(text));
    if (index < 0) return null;
    const [cut] = armed.splice(index, 1);
    return cut;
  }

  async function pipe(
    link: Link,
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    upstream: boolean,
  ): Promise<void> {
    const buffer = new Uint8Array(CHUNK_SIZE);
    try {
      while (!link.closed) {
        const n = await from.read(buffer);
        if (n === null) break;
        while (blackholed && !link.closed) await release.promise;
        if (link.closed) break;
        const chunk = buffer.subarray(0, n);
        if (!upstream && link.awaitingReply !== null) {
          // The answer is withheld: the client never learns the statement ran.
          if (!READY_FOR_QUERY.test(latin1.decode(chunk))) continue;
          const waiting = link.awaitingReply;
          link.awaitingReply = null;
          counters.cuts++;
          closeLink(link);
          waiting.resolve();
          break;
        }
        const cut = upstream ? takeCut(chunk) : null;
        if (cut === null) {
          await writeAll(to, chunk);
          continue;
        }
        if (cut.after === "reply") {
          link.awaitingReply = cut;
          await writeAll(to, chunk);
          continue;
        }
        if (cut.after === "forward") {
          try {
            await writeAll(to, chunk);
            // A FIN right behind the bytes makes the server read them before it sees the client go.
            await to.closeWrite();
          } catch {
            // The server went first; the connection is cut all the same.
          }
        }
        counters.cuts++;
        closeLink(link);
        cut.resolve();
      }
    } catch {
      // A reset, a broken pipe or our own close() ends this direction; the other one goes with it.
    }
    closeLink(link);
  }

  async function serve(client: Deno.TcpConn): Promise<void> {
    const link: Link = { client, server: null, closed: false, awaitingReply: null };
    links.add(link);
    try {
      link.server = await Deno.connect({ hostname: targetHostname, port: targetPort });
    } catch {
      // The target is down: hang up on the client as a dead server would.
      closeLink(link);
      return;
    }
    if (link.closed) {
      // resetAll() or close() ran while connecting; the new server socket is ours to drop.
      link.server.close();
      return;
    }
    await Promise.all([
      pipe(link, client, link.server, true),
      pipe(link, link.server, client, false),
    ]);
  }

  async function acceptLoop(current: Deno.TcpListener): Promise<void> {
    while (true) {
      let client: Deno.TcpConn;
      try {
        client = await current.accept();
      } catch {
        // Closing the listener (refuseNew, close) interrupts accept; any other error is as fatal.
        return;
      }
      if (closed) {
        client.close();
        return;
      }
      counters.accepted++;
      track(serve(client));
    }
  }

  function stopListening(): void {
    if (listener === null) return;
    try {
      listener.close();
    } catch {
      // Already closed.
    }
    listener = null;
  }

  let accepting = track(acceptLoop(listener));

  return {
    port,
    hostname,
    url(databaseUrl) {
      const url = new URL(databaseUrl);
      // A wildcard listen address accepts connections but is not one to connect to.
      const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "::1" : hostname;
      url.hostname = host.includes(":") ? `[${host}]` : host;
      url.port = String(port);
      return url.toString();
    },
    async refuseNew(refuse) {
      if (closed) return;
      if (refuse) {
        stopListening();
        await accepting;
        return;
      }
      if (listener !== null) return;
      listener = Deno.listen({ hostname, port, transport: "tcp" });
      accepting = track(acceptLoop(listener));
    },
    resetAll() {
      for (const link of [...links]) {
        counters.resets++;
        closeLink(link);
      }
    },
    cutWhen(pattern, cutOptions = {}) {
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      // Awaiting still sees the rejection; a drill that abandoned the cut must not crash on it.
      promise.catch(() => {});
      if (closed) {
        reject(new Error("Cannot arm a cut as the fault proxy is closed"));
        return promise;
      }
      const matches = typeof pattern === "string"
        ? (text: string) => text.includes(pattern)
        : (text: string) => {
          // A /g or /y pattern keeps lastIndex between calls; every chunk must be searched whole.
          pattern.lastIndex = 0;
          return pattern.test(text);
        };
      armed.push({ matches, after: cutOptions.after ?? "drop", resolve, reject });
      return promise;
    },
    blackhole(on) {
      blackholed = on;
      release.resolve();
      release = Promise.withResolvers<void>();
    },
    stats() {
      return { open: links.size, ...counters };
    },
    async close() {
      if (!closed) {
        closed = true;
        stopListening();
        for (const link of [...links]) closeLink(link);
        const pending = armed;
        armed = [];
        for (const cut of pending) {
          cut.reject(new Error("Cannot cut: the fault proxy closed first"));
        }
      }
      // Connects in flight finish on their own; wait for them and every pipe so nothing leaks.
      while (tasks.size > 0) await Promise.all([...tasks]);
    },
  };
}
