/** @module Parses an HTTP/1.x request head (request line and header fields) strictly; no I/O. */
import type { HttpErrorStatus, ProblemType } from "../core/errors.ts";

/** How the body of a request is framed (RFC 9112 §6.3). */
export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | {
  kind: "chunked";
};

/** A parsed request head. */
export type RequestHead = {
  method: string;
  /** The path and query (origin form), e.g. `/webhooks/google?x=1`. */
  target: string;
  /** The path alone, used to pick the route's body limit before any body byte is read. */
  path: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  /** Field names and values in arrival order; values are latin1 (one char per byte). */
  fields: [string, string][];
  host: string | null;
  framing: BodyFraming;
  keepAlive: boolean;
  expectContinue: boolean;
};

/** Why a head was refused: always a 4xx, so bad input can never page anyone. */
export type HeadProblem = { status: HttpErrorStatus; type: ProblemType; message: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII only: no spaces, controls or raw non-ASCII bytes in the target.
const TARGET = /^\/[\x21-\x7e]*$/;
// Field values: HTAB, SP..~ and obs-text; CR, LF and NUL are never allowed.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]*)(:\d{1,5})?$/;
const DIGITS = /^\d{1,15}$/;

function bad(message: string, type: ProblemType = "malformed_request"): HeadProblem {
  return { status: 400, type, message };
}

const ascii = new TextDecoder();

/** Decodes bytes one char per byte (true latin1; TextDecoder's "latin1" is windows-1252). */
export function latin1(bytes: Uint8Array): string {
  // Heads are nearly always ASCII, where UTF-8 decodes the same, natively and far faster.
  let high = false;
  for (let i = 0; i < bytes.length && !high; i++) high = bytes[i] > 0x7f;
  if (!high) return ascii.decode(bytes);
  let text = "";
  for (let i = 0; i < bytes.length; i += 4_096) {
    text += String.fromCharCode(...bytes.subarray(i, i + 4_096));
  }
  return text;
}

/**
 * Parses `head` (everything before the blank line, without the final CRLF CRLF). Refuses, with a
 * 400, what request smuggling and parser confusion rely on: obsolete line folding, a field with
 * whitespace before its colon, both Content-Length and Transfer-Encoding, differing lengths, and
 * any transfer coding other than a lone `chunked`.
 */
export function parseRequestHead(head: Uint8Array): RequestHead | HeadProblem {
  const lines = latin1(head).split("\r\n");
  const requestLine = lines[0].split(" ");
  if (requestLine.length !== 3) return bad("Request line must be METHOD SP target SP version");
  const [method, rawTarget, version] = requestLine;
  if (!TOKEN.test(method)) return bad("Request method is not a token");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return bad("Only HTTP/1.0 and HTTP/1.1 are served", "unsupported_version");
  }
  const target = originForm(rawTarget);
  if (target === null) return bad("Request target must be an absolute path");

  const fields: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith(" ") || line.startsWith("\t")) return bad("Obsolete line folding");
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) return bad("Header field name is not a token", "invalid_header");
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) {
      return bad(`Header ${name.slice(0, 64)} has a forbidden character`, "invalid_header");
    }
    fields.push([name.toLowerCase(), value]);
  }
  const values = (name: string) => fields.filter(([n]) => n === name).map(([, v]) => v);

  const hosts = values("host");
  if (hosts.length > 1 || (hosts.length === 1 && !HOST.test(hosts[0]))) {
    return bad("Host header is invalid", "invalid_header");
  }
  const framing = bodyFraming(values("content-length"), values("transfer-encoding"));
  if ("status" in framing) return framing;
  const connection = values("connection").join(",").toLowerCase().split(",").map((t) => t.trim());
  const expect = values("expect").join(",").toLowerCase().trim();
  return {
    method,
    target,
    path: target.split("?")[0],
    version,
    fields,
    host: hosts[0] ?? null,
    framing,
    keepAlive: version === "HTTP/1.1" ? !connection.includes("close") : false,
    expectContinue: expect === "100-continue",
  };
}

/** The path-and-query of an origin-form or absolute-form target, or null. */
function originForm(target: string): string | null {
  if (TARGET.test(target)) return target;
  if (/^https?:\/\//i.test(target) && /^[\x21-\x7e]+$/.test(target)) {
    try {
      const url = new URL(target);
      return `${url.pathname}${url.search}`;
    } catch {
      return null;
    }
  }
  return null;
}

function bodyFraming(lengths: string[], codings: string[]): BodyFraming | HeadProblem {
  if (codings.length > 0) {
    if (lengths.length > 0) return bad("Both Content-Length and Transfer-Encoding are present");
    const list = codings.join(",").split(",").map((c) => c.trim().toLowerCase());
    if (list.length !== 1 || list[0] !== "chunked") {
      return bad("Only Transfer-Encoding: chunked is accepted", "invalid_header");
    }
    return { kind: "chunked" };
  }
  if (lengths.length === 0) return { kind: "none" };
  const distinct = new Set(lengths.join(",").split(",").map((v) => v.trim()));
  const [only] = distinct;
  if (distinct.size !== 1 || !DIGITS.test(only)) {
    return bad("Content-Length must be one decimal number", "invalid_header");
  }
  const length = Number(only);
  return length === 0 ? { kind: "none" } : { kind: "length", length };
}
