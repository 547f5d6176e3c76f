import { assertEquals, waitFor } from "../support/assert.ts";
import { tolerateStrayEpipe } from "../support/stray_epipe.ts";
import { isStraySocketWrite } from "../../src/storage/client.ts";

function epipe(message: string): Error {
  return Object.assign(new Error(message), { code: "EPIPE" });
}

Deno.test("isStraySocketWrite() matches only node:net's EPIPE after the peer's FIN", () => {
  assertEquals(isStraySocketWrite(epipe("This socket has been ended by the other party")), true);
  assertEquals(isStraySocketWrite(epipe("write EPIPE")), false);
  assertEquals(
    isStraySocketWrite(new Error("This socket has been ended by the other party")),
    false,
  );
  assertEquals(isStraySocketWrite("This socket has been ended by the other party"), false);
});

Deno.test("tolerateStrayEpipe() swallows the stray EPIPE and leaves other rejections alone", async () => {
  const seen: { stray: boolean; prevented: boolean }[] = [];
  // Registered after the tolerance, so it sees whether the tolerance prevented the default.
  const observe = (event: PromiseRejectionEvent) => {
    seen.push({ stray: isStraySocketWrite(event.reason), prevented: event.defaultPrevented });
    event.preventDefault();
  };
  {
    using stray = tolerateStrayEpipe();
    globalThis.addEventListener("unhandledrejection", observe);
    try {
      Promise.reject(epipe("This socket has been ended by the other party"));
      Promise.reject(new Error("something else"));
      await waitFor(() => seen.length === 2, { what: "both rejections dispatched" });
      assertEquals(stray.count(), 1);
    } finally {
      globalThis.removeEventListener("unhandledrejection", observe);
    }
  }
  assertEquals(seen, [{ stray: true, prevented: true }, { stray: false, prevented: false }]);
});
