/** @module Raw TCP clients for HTTP tests: bytes exactly as written, answers read until EOF. */

/** A raw connection to a test server. */
export type RawClient = {
  conn: Deno.TcpConn;
  send(data: string | Uint8Array): Promise<void>;
  /** Reads until the server closes; resolves with everything received (latin1). */
  readToEnd(): Promise<string>;
  /** Reads until `text` has arrived (or EOF); resolves with everything received so far. */
  readUntil(text: string): Promise<string>;
  close(): void;
};

const encoder = new TextEncoder();

/** Connects to 127.0.0.1:`port`. */
export async function rawClient(port: number): Promise<RawClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let received = "";
  let ended = false;
  let closed = false;
  async function readMore(): Promise<boolean> {
    if (ended) return false;
    const buffer = new Uint8Array(65_536);
    let n: number | null = null;
    try {
      n = await conn.read(buffer);
    } catch {
      n = null; // A reset counts as the end.
    }
    if (n === null) {
      ended = true;
      return false;
    }
    received += String.fromCharCode(...buffer.subarray(0, n));
    return true;
  }
  return {
    conn,
    async send(data) {
      const bytes = typeof data === "string" ? encoder.encode(data) : data;
      for (let written = 0; written < bytes.length;) {
        written += await conn.write(bytes.subarray(written));
      }
    },
    async readToEnd() {
      while (await readMore());
      return received;
    },
    async readUntil(text) {
      while (!received.includes(text) && await readMore());
      return received;
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
  };
}

/** Sends `data` on a fresh connection and returns everything the server answered until EOF. */
export async function rawExchange(port: number, data: string | Uint8Array): Promise<string> {
  const client = await rawClient(port);
  try {
    await client.send(data).catch(() => {});
    return await client.readToEnd();
  } finally {
    client.close();
  }
}

/** The statuses of every answer in `text` (pipelined answers included). */
export function statusesOf(text: string): number[] {
  // Answers follow each other without a newline between a body and the next status line.
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}
