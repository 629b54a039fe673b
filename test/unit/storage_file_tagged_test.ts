/**
 * A `file://` bucket's conditional reads: the time a read reports belongs to the version it
 * read. (A head read with the time of a newer head made a reader see a rollback that was not
 * there: `replicate` logged "head was rolled back" while `watch` shipped.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileStorage } from "../../src/storage/file.ts";

Deno.test("file: readTagged reports the modification time of the version whose bytes it returns", async () => {
  const dir = await Deno.makeTempDir({ prefix: "walsync-tagged-test-" });
  try {
    const storage = fileStorage(dir);
    const key = "app.db/head";
    const path = join(dir, key);
    const created = await storage.createIfAbsent(key, new TextEncoder().encode("0"));
    assert.ok(created.written);
    const etag = created.etag;
    await Deno.utime(path, 1000, 1000);
    // The writer runs on its own thread, so that it can replace the object at any moment
    // of a read.
    const source = `
      import { fileStorage } from ${
      JSON.stringify(import.meta.resolve("../../src/storage/file.ts"))
    };
      self.onmessage = async (event) => {
        const { dir, key, path, start } = event.data;
        const storage = fileStorage(dir);
        let etag = start;
        for (let i = 1; i <= 1500; i++) {
          const result = await storage.replaceIfMatch(key, new TextEncoder().encode(String(i)), etag);
          etag = result.etag;
          await Deno.utime(path, 1000 + i, 1000 + i);
        }
        self.postMessage("done");
      };`;
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const worker = new Worker(url, { type: "module" });
    let writing = true;
    const writer = new Promise<void>((resolve) => {
      worker.onmessage = () => {
        writing = false;
        resolve();
      };
    });
    worker.postMessage({ dir, key, path, start: etag });
    let mismatches = 0;
    while (writing) {
      const read = (await storage.readTagged(key))!;
      const version = Number(new TextDecoder().decode(read.bytes));
      const seconds = read.lastModified!.getTime() / 1000;
      // Before its stamp a version shows the real time of its write; never another stamp.
      if (seconds < 1e6 && seconds !== 1000 + version) mismatches++;
    }
    await writer;
    worker.terminate();
    URL.revokeObjectURL(url);
    assert.equal(mismatches, 0, "bytes of one version came with the time of another");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
