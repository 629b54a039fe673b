/**
 * `downloadVerified` over ranges (src/storage/transfer/download.ts): what its sink and its
 * progress callback see. The sink gets the object's bytes in order, one write at a time and in
 * slices of at most `sinkSlice` bytes, and progress advances with every slice, not
 * once per range: a 32 MiB range on a slow link would otherwise leave the bar still for
 * seconds. Both hold whether the main thread hashes or a worker does (objects of 64 MiB and
 * more, `hash_thread.ts`), and a body that does not match its digest is refused either way.
 * @module
 */
import assert from "node:assert/strict";
import { fileStorage } from "../../src/storage/file.ts";
import { putBytesObject } from "../../src/storage/object.ts";
import { downloadVerified, sinkSlice } from "../../src/storage/transfer/download.ts";
import { WalsyncError } from "../../src/support/errors.ts";
import { workDir } from "../support/files.ts";

async function randomObject(size: number): Promise<{ dir: string; bytes: Uint8Array }> {
  const dir = await workDir();
  const bytes = new Uint8Array(size);
  for (let i = 0; i < bytes.byteLength; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  }
  await putBytesObject(fileStorage(dir), "object", bytes, {});
  return { dir, bytes };
}

for (const hashOnThread of [false, true]) {
  const hasher = hashOnThread ? "a worker hashes" : "the main thread hashes";
  Deno.test(`downloadVerified (${hasher}): the sink gets every byte in order, one write at a time, each at most one slice, and progress moves with each of them`, async () => {
    const { dir, bytes } = await randomObject(5 * sinkSlice + 12345);
    const storage = fileStorage(dir);
    const received: Uint8Array<ArrayBuffer>[] = [];
    const progress: number[] = [];
    let writing = 0;
    const got = await downloadVerified(storage, "object", {
      async write(slice) {
        assert.equal(writing, 0, "a write started while the previous one was pending");
        assert.ok(slice.byteLength <= sinkSlice, `a write of ${slice.byteLength} bytes`);
        writing++;
        received.push(slice.slice());
        await new Promise((r) => setTimeout(r, 1));
        writing--;
      },
      reset() {
        received.length = 0;
        return Promise.resolve();
      },
    }, {
      onBytes: (total) => progress.push(total),
      rangeSize: 2 * sinkSlice + 1000,
      parallel: 2,
      hashOnThread,
    });

    assert.equal(got.size, bytes.byteLength);
    assert.equal(got.retries, 0);
    assert.deepEqual(new Uint8Array(await new Blob(received).arrayBuffer()), bytes);
    assert.equal(progress.at(-1), bytes.byteLength);
    let before = 0;
    for (const total of progress) {
      assert.ok(
        total > before && total - before <= sinkSlice,
        `progress from ${before} to ${total}`,
      );
      before = total;
    }
  });

  Deno.test(`downloadVerified (${hasher}): a stored object whose bytes changed after upload is an integrity error naming the digests`, async () => {
    const { dir, bytes } = await randomObject(3 * sinkSlice);
    const path = `${dir}/object`;
    const file = await Deno.open(path, { read: true, write: true });
    await file.seek(sinkSlice + 7, Deno.SeekMode.Start);
    await file.write(new Uint8Array([bytes[sinkSlice + 7] ^ 0x01]));
    file.close();

    const err = await downloadVerified(fileStorage(dir), "object", {
      write: () => Promise.resolve(),
      reset: () => Promise.resolve(),
    }, { rangeSize: sinkSlice, hashOnThread }).then(() => null, (e) => e);

    assert.ok(err instanceof WalsyncError, `got ${err}`);
    assert.equal(err.kind, "integrity");
    assert.match(err.message, /SHA256 mismatch/);
  });
}
