import { latin1, parseRequestHead } from "../../src/http/request_head.ts";
import { assert, assertEquals } from "../support/assert.ts";

const head = (text: string) => parseRequestHead(new TextEncoder().encode(text));

Deno.test("parseRequestHead() reads method, path, framing and keep-alive", () => {
  const parsed = head("POST /webhooks/microsoft?x=1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 12");
  assert(!("status" in parsed));
  assertEquals(parsed.path, "/webhooks/microsoft");
  assertEquals(parsed.target, "/webhooks/microsoft?x=1");
  assertEquals(parsed.framing, { kind: "length", length: 12 });
  assertEquals(parsed.keepAlive, true);
});

Deno.test("parseRequestHead() refuses what smuggling and parser confusion rely on, with a 400", () => {
  const cases = [
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2",
    "GET / HTTP/1.1\r\nContent-Length: -1",
    "GET / HTTP/1.1\r\nContent-Length: 1e3",
    "GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked",
    "GET / HTTP/1.1\r\nTransfer-Encoding: identity",
    "GET / HTTP/1.1\r\nX-A: 1\r\n folded",
    "GET / HTTP/1.1\r\nX-A : 1",
    "GET / HTTP/1.1\r\nX-A: a\u0000b",
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b",
    "GET / HTTP/2.0",
    "GET  / HTTP/1.1",
    "G@T / HTTP/1.1",
    "GET nopath HTTP/1.1",
    "GET /sp ace HTTP/1.1",
    "PRI * HTTP/2.0",
  ];
  for (const text of cases) {
    const parsed = head(text);
    assert("status" in parsed && parsed.status === 400, `accepted: ${JSON.stringify(text)}`);
  }
});

Deno.test("latin1() maps every byte to one char, ASCII or not", () => {
  assertEquals(latin1(new TextEncoder().encode("GET / HTTP/1.1")), "GET / HTTP/1.1");
  assertEquals(latin1(new Uint8Array([0x41, 0x80, 0xe9, 0xff])), "A\u0080\u00e9\u00ff");
  assertEquals(latin1(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])), "\u00ef\u00bb\u00bfA");
});
