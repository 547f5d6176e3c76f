import { createChunkedDecoder } from "../../src/http/chunked_body.ts";
import { assertEquals } from "../support/assert.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("createChunkedDecoder() decodes a body fed one byte at a time, trailers included", () => {
  const decoder = createChunkedDecoder(100);
  const wire = bytes("3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT");
  let done = false;
  let consumed = 0;
  for (let i = 0; i < wire.length && !done; i++) {
    const step = decoder.push(wire.subarray(i, i + 1));
    if (!step.ok) throw new Error(step.problem);
    consumed += step.consumed;
    done = step.done;
  }
  assertEquals(done, true);
  assertEquals(new TextDecoder().decode(wire.subarray(consumed)), "NEXT");
  assertEquals(decoder.size, 5);
});

Deno.test("createChunkedDecoder() refuses a chunk beyond the limit by its declared size", () => {
  const step = createChunkedDecoder(4_096).push(bytes("2000\r\n"));
  assertEquals(step, { ok: false, problem: "too_large" });
});

Deno.test("createChunkedDecoder() refuses invalid framing", () => {
  for (const wire of ["zz\r\n", "3\r\nabcX\r\n", "3\nabc\r\n", "-1\r\n", "123456789\r\n"]) {
    const step = createChunkedDecoder(1e9).push(bytes(wire));
    assertEquals(step.ok, false, JSON.stringify(wire));
  }
});
