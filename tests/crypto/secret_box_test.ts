import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";
import { createSecretBox, parseKeyList, SecretBoxError } from "../../src/crypto/secret_box.ts";
import { ConfigError, loadConfig } from "../../src/config/config.ts";

const key = () => crypto.getRandomValues(new Uint8Array(32));
const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

Deno.test("seal() encrypts with AES-GCM and open() returns the plaintext", async () => {
  const box = createSecretBox([key()]);
  const sealed = await box.seal("1//refresh-token");
  assert(sealed.startsWith("enc:v1:") && !sealed.includes("refresh-token"), sealed);
  assert(sealed !== await box.seal("1//refresh-token"), "the IV must differ per seal");
  assertEquals(await box.open(sealed), "1//refresh-token");
});

Deno.test("open() rejects tampered ciphertexts and unknown keys with a clear error", async () => {
  const box = createSecretBox([key()]);
  const sealed = await box.seal("secret");
  const tampered = sealed.slice(0, -3) + (sealed.endsWith("A") ? "BBB" : "AAA");
  await assertRejects(() => box.open(tampered), SecretBoxError, "corrupt or was altered");
  await assertRejects(
    () => createSecretBox([key()]).open(sealed),
    SecretBoxError,
    "not in CALSYNC_ENCRYPTION_KEY",
  );
});

Deno.test("rotation: a new current key still opens values sealed with the old one", async () => {
  const oldKey = key();
  const newKey = key();
  const before = await createSecretBox([oldKey]).seal("rt");
  const rotated = createSecretBox([newKey, oldKey]);
  assertEquals(await rotated.open(before), "rt");
  assertEquals(await rotated.needsReseal(before), true);
  const resealed = await rotated.seal(await rotated.open(before));
  assertEquals(await rotated.needsReseal(resealed), false);
  assertEquals(await createSecretBox([newKey]).open(resealed), "rt");
});

Deno.test("without a key, values are stored and read as they are", async () => {
  const box = createSecretBox([]);
  assertEquals([box.encrypting, await box.seal("x"), await box.open("x")], [false, "x", "x"]);
  assertEquals(await createSecretBox([key()]).open("legacy-plaintext"), "legacy-plaintext");
});

Deno.test("parseKeyList() and loadConfig() reject keys of the wrong size without echoing them", () => {
  assertEquals(typeof parseKeyList(b64(key())), "object");
  assertStringIncludes(String(parseKeyList("c2hvcnQ=")), "must be 32 bytes");
  try {
    loadConfig({ CALSYNC_ENCRYPTION_KEY: "c2hvcnQ=" });
    throw new Error("accepted a short key");
  } catch (error) {
    assert(error instanceof ConfigError);
    assertStringIncludes(error.message, "CALSYNC_ENCRYPTION_KEY: key 1 must be 32 bytes");
    assert(!error.message.includes("c2hvcnQ"));
  }
  const fromFile = loadConfig(
    { CALSYNC_ENCRYPTION_KEY_FILE: "/keys/calsync" },
    () => b64(key()) + "\n",
  );
  assert(fromFile.CALSYNC_ENCRYPTION_KEY !== undefined);
});
