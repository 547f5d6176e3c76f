/** @module An incremental, bounded decoder of `Transfer-Encoding: chunked` bodies; no I/O. */

/** What feeding bytes did: how many were consumed, whether the body ended, or why it is invalid. */
export type ChunkedStep =
  | { ok: true; consumed: number; done: boolean }
  | { ok: false; problem: "invalid" | "too_large" };

/** A decoder of one chunked body; `data` holds the decoded chunks so far. */
export type ChunkedDecoder = {
  readonly data: Uint8Array[];
  readonly size: number;
  push(bytes: Uint8Array): ChunkedStep;
};

// A size line is hex digits plus optional extensions; nothing legitimate needs more.
const MAX_LINE = 1_024;
const MAX_TRAILERS = 4_096;
const HEX = /^[0-9A-Fa-f]{1,8}$/;

/**
 * Decodes a chunked body whose decoded size must stay within `limit` bytes. The limit is checked
 * against each chunk's declared size before its data is read, so an oversized body is refused
 * without being buffered.
 */
export function createChunkedDecoder(limit: number): ChunkedDecoder {
  const data: Uint8Array[] = [];
  let size = 0;
  let state: "size" | "data" | "data_end" | "trailer" | "done" = "size";
  let line = "";
  let left = 0;
  let trailerBytes = 0;

  function push(bytes: Uint8Array): ChunkedStep {
    let i = 0;
    while (i < bytes.length && state !== "done") {
      if (state === "data") {
        const take = Math.min(left, bytes.length - i);
        data.push(bytes.slice(i, i + take));
        i += take;
        left -= take;
        if (left === 0) state = "data_end";
        continue;
      }
      // The other states read CRLF-terminated lines one byte at a time; they are short.
      const byte = bytes[i++];
      if (byte !== 0x0a) {
        line += String.fromCharCode(byte);
        if (line.length > MAX_LINE) return { ok: false, problem: "invalid" };
        if (state === "trailer" && ++trailerBytes > MAX_TRAILERS) {
          return { ok: false, problem: "invalid" };
        }
        continue;
      }
      if (!line.endsWith("\r")) return { ok: false, problem: "invalid" };
      const text = line.slice(0, -1);
      line = "";
      if (state === "data_end") {
        if (text !== "") return { ok: false, problem: "invalid" };
        state = "size";
      } else if (state === "size") {
        const digits = text.split(";")[0].trim();
        if (!HEX.test(digits)) return { ok: false, problem: "invalid" };
        left = parseInt(digits, 16);
        if (size + left > limit) return { ok: false, problem: "too_large" };
        size += left;
        state = left === 0 ? "trailer" : "data";
      } else if (text === "") {
        state = "done";
      } else if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(text)) {
        return { ok: false, problem: "invalid" };
      }
    }
    return { ok: true, consumed: i, done: state === "done" };
  }

  return {
    data,
    get size() {
      return size;
    },
    push,
  };
}
