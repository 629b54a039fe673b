/**
 * `writeAllSync` (src/support/write_all.ts): a buffer reaches the file whole and in order, in
 * `write` calls of at most 64 KiB, and a short write is continued rather than dropped. The size
 * of each call is the point: Linux gives a write of N bytes page-cache folios of about N bytes,
 * and on this project's VMs large folios were often slow to fill (`pageCacheWrite` has the
 * figures).
 * @module
 */
import assert from "node:assert/strict";
import { writeAllSync } from "../../src/support/write_all.ts";
import { workDir } from "../support/files.ts";

/** A stand-in for the file that records each call and accepts at most `accept` bytes of it. */
function recordingFile(accept = Infinity) {
  const calls: number[] = [];
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  const file = {
    writeSync(bytes: Uint8Array): number {
      calls.push(bytes.byteLength);
      const taken = bytes.slice(0, Math.min(accept, bytes.byteLength));
      chunks.push(taken);
      return taken.byteLength;
    },
  };
  return { file, calls, chunks };
}

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

Deno.test("writeAllSync: 1 MiB and a bit goes out in order, in write calls of at most 64 KiB", async () => {
  const bytes = randomBytes(1024 * 1024 + 777);
  const { file, calls, chunks } = recordingFile();
  writeAllSync(file, bytes);
  assert.ok(calls.every((n) => n <= 64 * 1024), `calls of ${Math.max(...calls)} bytes`);
  assert.equal(calls.length, 17, "16 full calls of 64 KiB and one of the rest");
  assert.deepEqual(new Uint8Array(await new Blob(chunks).arrayBuffer()), bytes);
});

Deno.test("writeAllSync: a write that takes fewer bytes than offered is continued from where it stopped", async () => {
  const bytes = randomBytes(100_000);
  const { file, calls, chunks } = recordingFile(30_000);
  writeAllSync(file, bytes);
  assert.deepEqual(calls, [65_536, 65_536, 40_000, 10_000]);
  assert.deepEqual(new Uint8Array(await new Blob(chunks).arrayBuffer()), bytes);
});

Deno.test("writeAllSync: a real file ends up with exactly the bytes", async () => {
  const dir = await workDir();
  const bytes = randomBytes(300_001);
  const file = await Deno.open(`${dir}/out.bin`, { write: true, createNew: true });
  try {
    writeAllSync(file, bytes.subarray(0, 1));
    writeAllSync(file, bytes.subarray(1));
  } finally {
    file.close();
  }
  assert.deepEqual(await Deno.readFile(`${dir}/out.bin`), bytes);
});
