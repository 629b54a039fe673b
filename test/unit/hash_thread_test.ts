/**
 * `startThreadHash` (src/storage/transfer/hash_thread.ts): SHA256 on a worker over shared
 * buffers gives the digest `node:crypto` gives on the main thread, for updates of any length in
 * the order they were made, and refuses memory the worker cannot see.
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startThreadHash } from "../../src/storage/transfer/hash_thread.ts";

Deno.test("a thread hash over views of shared buffers equals the main thread's SHA256 of the same bytes in the same order", async () => {
  const hash = await startThreadHash();
  assert.ok(hash, "workers and shared memory are available under deno test");
  try {
    const shared = new Uint8Array(new SharedArrayBuffer(3 * 65536 + 17));
    for (let at = 0; at < shared.byteLength; at += 65536) {
      shared.set(
        crypto.getRandomValues(new Uint8Array(Math.min(65536, shared.byteLength - at))),
        at,
      );
    }
    const pieces = [shared.subarray(100, 5000), shared.subarray(0, 0), shared.subarray(5000)];
    const expected = createHash("sha256");
    const updates = pieces.map((piece) => {
      expected.update(piece.slice());
      return hash.update(piece);
    });
    await Promise.all(updates);
    assert.equal(await hash.digest(), expected.digest("hex"));
  } finally {
    hash.close();
  }
});

Deno.test("a thread hash refuses a view of memory that is not shared, and rejects calls once closed", async () => {
  const hash = await startThreadHash();
  assert.ok(hash);
  await assert.rejects(hash.update(new Uint8Array(16)), /SharedArrayBuffer/);
  hash.close();
  await assert.rejects(hash.update(new Uint8Array(new SharedArrayBuffer(16))), /closed/);
});
