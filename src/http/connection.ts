/**
 * @module Serves HTTP/1.1 on one accepted TCP connection, with a deadline on every phase.
 *
 * Deno.serve has no header, body or keep-alive timeouts and buffers bodies before a handler can
 * refuse them, so calsync owns its sockets: each phase (waiting for a request, reading its head,
 * reading its body, writing the answer) arms one timer that closes the socket when it fires, and
 * the body is read only after the route's limit and the process-wide byte budget allow it.
 */
import { HttpError, type HttpErrorStatus, type ProblemType } from "../core/errors.ts";
import { createChunkedDecoder } from "./chunked_body.ts";
import { problemBody, STATUS_TEXT } from "./problem.ts";
import { parseRequestHead, type RequestHead } from "./request_head.ts";

/** Why a connection closed: the `reason` label of `calsync_http_connections_closed_total`. */
export type CloseReason =
  | "completed"
  | "client_closed"
  | "idle_timeout"
  | "header_timeout"
  | "body_timeout"
  | "write_timeout"
  | "malformed"
  | "headers_too_large"
  | "body_too_large"
  | "overloaded"
  | "connection_limit"
  | "shutdown"
  | "error";

/** A request the server refused before the app saw it, for one log line. */
export type Refusal = { status: HttpErrorStatus; type: ProblemType; message: string };

/** Settings and shared state every connection of one listener uses. */
export type ConnectionContext = {
  handler: (request: Request) => Response | Promise<Response>;
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderBytes: number;
  /** The largest body the route of `path` accepts. */
  bodyLimit: (path: string) => number;
  /** Reserves body bytes against the process-wide budget; false when it is spent. */
  reserve: (bytes: number) => boolean;
  release: (bytes: number) => void;
  /** True once the server drains: answers carry `connection: close`. */
  draining: () => boolean;
  onRefused: (refusal: Refusal) => void;
};

/** A connection being served; `idle` is true between requests (closed at once on shutdown). */
export type ServedConnection = {
  readonly idle: boolean;
  /** Closes the socket now, recording `reason` (a pending read then fails). */
  cut(reason: CloseReason): void;
  /** Settles with the reason once the socket is closed. */
  readonly done: Promise<CloseReason>;
};

const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const READ_CHUNK = 16_384;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
// Hop-by-hop and framing fields are the server's to write, never the app's.
const OWN_FIELDS = new Set(["connection", "content-length", "transfer-encoding", "keep-alive"]);

// Refusals close the connection (framing may be lost); each closes for its own reason.
const REFUSAL_REASONS: Partial<Record<ProblemType, CloseReason>> = {
  headers_too_large: "headers_too_large",
  payload_too_large: "body_too_large",
  overloaded: "overloaded",
  unavailable: "shutdown",
};
// After a refusal, unread request bytes would turn our close into a reset that can destroy the
// answer in flight; a bounded drain lets the client read it first.
const LINGER_MS = 2_000;
const LINGER_BYTES = 65_536;

function refused(refusal: Refusal): HttpError {
  return new HttpError(refusal.status, { type: refusal.type, message: refusal.message });
}

/** Starts serving `conn`; returns at once. */
export function serveConnection(conn: Deno.TcpConn, ctx: ConnectionContext): ServedConnection {
  let buffer: Uint8Array = EMPTY;
  let idle = true;
  let cutReason: CloseReason | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  function close(): void {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed by the peer's reset.
    }
  }
  function cut(reason: CloseReason): void {
    cutReason ??= reason;
    close();
  }
  function arm(ms: number, reason: CloseReason): void {
    clearTimeout(timer);
    timer = setTimeout(() => cut(reason), ms);
  }
  function disarm(): void {
    clearTimeout(timer);
  }

  // One read buffer per connection: a fresh 16 KiB per read was most of a request's garbage.
  let scratch: Uint8Array | null = null;

  /** Reads more bytes into `buffer`; false at end of stream. */
  async function fill(): Promise<boolean> {
    const chunk = scratch ??= new Uint8Array(READ_CHUNK);
    const n = await conn.read(chunk);
    if (n === null) return false;
    // concat copies, so the scratch buffer is free for the next read.
    buffer = concat(buffer, chunk.subarray(0, n));
    return true;
  }

  async function write(bytes: Uint8Array): Promise<void> {
    arm(ctx.bodyTimeoutMs, "write_timeout");
    for (let written = 0; written < bytes.length;) {
      written += await conn.write(bytes.subarray(written));
    }
    disarm();
  }

  /** Reads the next head; null when the client closed between requests. */
  async function readHead(): Promise<RequestHead | null> {
    idle = true;
    arm(ctx.idleTimeoutMs, "idle_timeout");
    // Tolerate the empty lines some clients send between requests (RFC 9112 §2.2).
    for (;;) {
      while (buffer.length >= 2 && buffer[0] === 13 && buffer[1] === 10) buffer = buffer.slice(2);
      if (buffer.length > 0 && !(buffer.length === 1 && buffer[0] === 13)) break;
      if (!(await fill())) return null;
    }
    idle = false;
    if (ctx.draining()) throw refused(unavailableRefusal());
    // The header deadline is armed only once the head has to be waited for: a head that came
    // whole with its first bytes (nearly every one) costs no timer.
    let waiting = false;
    let searchFrom = 0;
    for (;;) {
      const end = indexOf(buffer, CRLF2, searchFrom);
      if (end >= 0) {
        const head = buffer.subarray(0, end);
        buffer = buffer.slice(end + 4);
        const parsed = parseRequestHead(head);
        if ("status" in parsed) throw refused(parsed);
        // The head is in: its deadline must not run on into the body or the handler.
        disarm();
        return parsed;
      }
      if (buffer.length > ctx.maxHeaderBytes) {
        throw refused({
          status: 431,
          type: "headers_too_large",
          message: `Request head exceeds ${ctx.maxHeaderBytes} bytes`,
        });
      }
      searchFrom = Math.max(0, buffer.length - 3);
      if (!waiting) (waiting = true, arm(ctx.headerTimeoutMs, "header_timeout"));
      if (!(await fill())) {
        throw refused(
          { status: 400, type: "malformed_request", message: "Request head ended early" },
        );
      }
    }
  }

  /** Reads the body the head announces, within the route's limit and the byte budget. */
  async function readBody(head: RequestHead, limit: number): Promise<Uint8Array> {
    if (head.framing.kind === "none") return EMPTY;
    if (head.framing.kind === "length" && head.framing.length > limit) {
      throw refused(tooLarge(limit));
    }
    if (head.expectContinue) await write(encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
    arm(ctx.bodyTimeoutMs, "body_timeout");
    const body = head.framing.kind === "length"
      ? await readLengthBody(head.framing.length)
      : await readChunkedBody(limit);
    disarm();
    return body;
  }

  async function readLengthBody(length: number): Promise<Uint8Array> {
    // Reading straight into a buffer of the declared size copies each byte once.
    const body = new Uint8Array(length);
    let filled = Math.min(length, buffer.length);
    body.set(buffer.subarray(0, filled));
    buffer = buffer.slice(filled);
    while (filled < length) {
      const n = await conn.read(body.subarray(filled));
      if (n === null) throw refused(truncated());
      filled += n;
    }
    return body;
  }

  async function readChunkedBody(limit: number): Promise<Uint8Array> {
    const decoder = createChunkedDecoder(limit);
    let reserved = 0;
    try {
      for (;;) {
        const step = decoder.push(buffer);
        if (!step.ok) {
          throw step.problem === "too_large" ? refused(tooLarge(limit)) : refused(
            { status: 400, type: "malformed_request", message: "Invalid chunked body" },
          );
        }
        buffer = buffer.slice(step.consumed);
        // Chunked bodies reserve as they grow; the whole size is reserved once they end.
        if (decoder.size > reserved) {
          if (!ctx.reserve(decoder.size - reserved)) throw refused(overloaded());
          reserved = decoder.size;
        }
        if (step.done) return concatAll(decoder.data, decoder.size);
        if (!(await fill())) throw refused(truncated());
      }
    } finally {
      ctx.release(reserved);
    }
  }

  async function answer(response: Response, head: RequestHead, keepAlive: boolean) {
    const bodyless = head.method === "HEAD" || response.status === 204 ||
      response.status === 304 || response.status < 200;
    let body = EMPTY;
    if (bodyless) await response.body?.cancel();
    else body = new Uint8Array(await response.arrayBuffer());
    await write(serialize(response, body, { bodyless, keepAlive, head: head.method === "HEAD" }));
  }

  async function refuse(refusal: Refusal): Promise<void> {
    const body = encoder.encode(problemBody(refusal.status, refusal.type, refusal.message));
    const response = new Response(null, {
      status: refusal.status,
      headers: { "content-type": "application/problem+json" },
    });
    await write(serialize(response, body, { bodyless: false, keepAlive: false, head: false }));
  }

  async function serveOne(): Promise<CloseReason | null> {
    const head = await readHead();
    if (head === null) return "client_closed";
    const limit = ctx.bodyLimit(head.path);
    const declared = head.framing.kind === "length" ? head.framing.length : 0;
    if (declared > limit) throw refused(tooLarge(limit));
    if (!ctx.reserve(declared)) throw refused(overloaded());
    try {
      const body = await readBody(head, limit);
      const request = toRequest(head, body, conn.localAddr);
      if (request === null) {
        throw refused(
          { status: 400, type: "malformed_request", message: "Request cannot be represented" },
        );
      }
      idle = false;
      const response = await handle(ctx, request);
      const keepAlive = head.keepAlive && !ctx.draining();
      await answer(response, head, keepAlive);
      return keepAlive ? null : "completed";
    } finally {
      ctx.release(declared);
    }
  }

  /** Answers a refusal, then lets the client read it before the socket closes. */
  async function refuseAndLinger(error: HttpError): Promise<void> {
    const refusal = { status: error.status, type: error.type, message: error.message };
    ctx.onRefused(refusal);
    await refuse(refusal);
    await conn.closeWrite();
    arm(LINGER_MS, REFUSAL_REASONS[error.type] ?? "malformed");
    const scratch = new Uint8Array(READ_CHUNK);
    for (let drained = 0; drained < LINGER_BYTES;) {
      const n = await conn.read(scratch);
      if (n === null) break;
      drained += n;
    }
  }

  async function run(): Promise<CloseReason> {
    try {
      conn.setNoDelay(true);
      for (;;) {
        const reason = await serveOne();
        if (reason !== null) return reason;
      }
    } catch (error) {
      if (cutReason !== null) return cutReason;
      if (!(error instanceof HttpError)) return "client_closed";
      const reason = REFUSAL_REASONS[error.type] ?? "malformed";
      // A cut while lingering is still this refusal's close, not a timeout of its own.
      await refuseAndLinger(error).catch(() => {});
      cutReason = reason;
      return reason;
    } finally {
      close();
    }
  }

  const done = run().then((reason) => cutReason ?? reason);
  return {
    get idle() {
      return idle;
    },
    cut,
    done,
  };
}

async function handle(ctx: ConnectionContext, request: Request): Promise<Response> {
  try {
    return await ctx.handler(request);
  } catch {
    // The app answers its own errors; this is a last resort that reveals nothing.
    return new Response(problemBody(500, "internal_error", "Internal error"), {
      status: 500,
      headers: { "content-type": "application/problem+json" },
    });
  }
}

function toRequest(head: RequestHead, body: Uint8Array, local: Deno.Addr): Request | null {
  try {
    const authority = head.host || hostOf(local);
    // A string, not a URL: Request parses it anyway, and an invalid one throws the same.
    const url = `http://${authority}${head.target}`;
    const bodyAllowed = head.method !== "GET" && head.method !== "HEAD";
    const request = new Request(url, {
      method: head.method,
      body: bodyAllowed && body.length > 0 ? (body as Uint8Array<ArrayBuffer>) : null,
    });
    // Fields go straight into the request's own headers: a Headers object given in the init is
    // iterated (sorted) and validated a second time, which cost more than the rest of this.
    // A byte-array body sets no content-type of its own, so the client's fields are all there is.
    const headers = request.headers;
    for (const [name, value] of head.fields) headers.append(name, value);
    return request;
  } catch {
    return null;
  }
}

function hostOf(addr: Deno.Addr): string {
  if (addr.transport !== "tcp") return "localhost";
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

function serialize(
  response: Response,
  body: Uint8Array,
  options: { bodyless: boolean; keepAlive: boolean; head: boolean },
): Uint8Array {
  let text = `HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? ""}\r\n`;
  for (const [name, value] of response.headers) {
    if (!OWN_FIELDS.has(name) && name !== "set-cookie") text += `${name}: ${value}\r\n`;
  }
  for (const cookie of response.headers.getSetCookie()) text += `set-cookie: ${cookie}\r\n`;
  if (!response.headers.has("date")) text += `date: ${httpDate()}\r\n`;
  if (!options.bodyless) text += `content-length: ${body.length}\r\n`;
  else if (options.head && response.headers.has("content-length")) {
    text += `content-length: ${response.headers.get("content-length")}\r\n`;
  }
  text += options.keepAlive ? "\r\n" : "connection: close\r\n\r\n";
  return concat(encoder.encode(text), body);
}

// The Date field has a resolution of one second: format it once per second, not per answer.
let dateSecond = -1;
let dateText = "";
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) (dateSecond = second, dateText = new Date(now).toUTCString());
  return dateText;
}

function tooLarge(limit: number): Refusal {
  return { status: 413, type: "payload_too_large", message: `Body exceeds ${limit} bytes` };
}

function truncated(): Refusal {
  return {
    status: 400,
    type: "malformed_request",
    message: "Body ended before its declared length",
  };
}

function overloaded(): Refusal {
  return {
    status: 503,
    type: "overloaded",
    message: "Too many request bytes in flight; retry later",
  };
}

function unavailableRefusal(): Refusal {
  return { status: 503, type: "unavailable", message: "Server is shutting down; retry later" };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function concatAll(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}
