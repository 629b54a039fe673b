/**
 * `walsync watch` ships exactly what SQLite committed: what the wal-index header in the
 * `-shm` publishes, found beside the database's real file, whatever the `-wal` file's
 * stamps say. File bucket only: these are about reading the database, not storage.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { appSchema, writer } from "../support/application.ts";
import { fileBucket } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { maxStoredTxid, segmentKeys } from "../support/layout.ts";
import { sqlite } from "../support/sqlite.ts";
import { sleep } from "../support/wait.ts";
import { assertRestoresExactly, restoresWithin, startWatch } from "../support/walsync.ts";
import {
  parseWalHeader,
  readCommittedFrames,
  walChecksum,
  walFrameHeaderSize,
  walStartPosition,
} from "../../src/format/wal.ts";

Deno.test("file: a database watched through a symlink is backed up after its first snapshot (its -wal is beside the real file), and the log names the real path", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  await Deno.mkdir(join(dir, "real"));
  await Deno.mkdir(join(dir, "link"));
  const real = join(dir, "real", "app.db");
  await sqlite(real, appSchema);
  const link = join(dir, "link", "app.db");
  await Deno.symlink(real, link);
  const watch = startWatch(bucket, [link]);
  try {
    await watch.waitForLog(/snapshot uploaded/);
    await writer(link, { transactions: 20 });
    assert.ok(
      await restoresWithin(bucket, real, "app.db", dir, 8000),
      `commits after the snapshot were not shipped:\n${watch.log()}`,
    );
    assert.match(watch.log(), new RegExp(`INFO .*${real.replaceAll("/", "\\/")}`));
  } finally {
    await watch.kill();
  }
});

Deno.test("file: a commit that rewrites the WAL in place after a restart, leaving its size and mtime as they were, is still shipped", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  const wal = `${db}-wal`;
  const watch = startWatch(bucket, [db], {
    syncInterval: "1s",
    args: ["--checkpoint-size", "20000"],
  });
  try {
    await watch.waitForLog(/snapshot uploaded/);
    await writer(db, { transactions: 30, rows: 3, blobMax: 2000 });
    await watch.waitForLog(/checkpointed/);
    assert.ok(await restoresWithin(bucket, db, "app.db", dir, 8000), watch.log());
    // Past the fast polling that follows our checkpoint: only the regular syncs look now.
    await sleep(2500);
    const before = await Deno.stat(wal);
    // The held reader is on slot 0 of a fully checkpointed WAL: this commit restarts the WAL
    // and rewrites it from its start, in place. Then its mtime is put back.
    const app = new DatabaseSync(db, { timeout: 5000 });
    app.exec("INSERT INTO events(tag, n, body) VALUES ('rewrite', 1, 'in place')");
    app.close();
    Deno.utimeSync(wal, before.atime!, before.mtime!);
    const after = await Deno.stat(wal);
    assert.equal(after.size, before.size, "the WAL restarted in place (same size)");
    assert.equal(after.mtime!.getTime(), before.mtime!.getTime());
    assert.ok(
      await restoresWithin(bucket, db, "app.db", dir, 6000),
      `the rewritten WAL's commit was not shipped:\n${watch.log()}`,
    );
  } finally {
    await watch.kill();
  }
});

/**
 * Appends to the `-wal` a copy of its last committed frame, with a correct checksum and a
 * commit size: a valid-looking commit that SQLite never published in the wal-index (as a
 * writer killed between writing its frames and publishing them leaves).
 */
async function appendUnpublishedCommit(walPath: string): Promise<void> {
  const bytes = await Deno.readFile(walPath);
  const header = parseWalHeader(bytes);
  const found = readCommittedFrames(bytes.subarray(32), header, walStartPosition(header));
  const frameSize = walFrameHeaderSize + header.pageSize;
  const last = bytes.slice(found.end.offset - frameSize, found.end.offset);
  const page = last.subarray(walFrameHeaderSize);
  page[page.byteLength - 1] ^= 0xff; // a different page: a restore holding it would differ
  const view = new DataView(last.buffer);
  const [h0, h1] = walChecksum(
    last.subarray(0, 8),
    header.bigEndian,
    found.end.checksum1,
    found.end.checksum2,
  );
  const [s0, s1] = walChecksum(page, header.bigEndian, h0, h1);
  view.setUint32(16, s0);
  view.setUint32(20, s1);
  const file = await Deno.open(walPath, { write: true });
  try {
    await file.seek(found.end.offset, Deno.SeekMode.Start);
    await file.write(last);
  } finally {
    file.close();
  }
}

Deno.test("file: a valid commit frame past the wal-index's published max frame is never shipped; SQLite's next commits overwrite it and are", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  const watch = startWatch(bucket, [db]);
  try {
    await watch.waitForLog(/snapshot uploaded/);
    await writer(db, { transactions: 5 });
    assert.ok(await restoresWithin(bucket, db, "app.db", dir, 8000), watch.log());
    const txid = await maxStoredTxid(bucket, "app.db");
    const segments = (await segmentKeys(bucket)).length;
    await appendUnpublishedCommit(`${db}-wal`);
    await sleep(1500);
    assert.equal(await maxStoredTxid(bucket, "app.db"), txid, "an unpublished commit was shipped");
    assert.equal((await segmentKeys(bucket)).length, segments);
    await writer(db, { transactions: 5, tag: "after" });
    assert.ok(
      await restoresWithin(bucket, db, "app.db", dir, 8000),
      `commits after the unpublished frame were not shipped:\n${watch.log()}`,
    );
    const stopped = await watch.stop("SIGTERM");
    assert.equal(stopped.code, 0, stopped.log);
    await assertRestoresExactly(bucket, db, "app.db", dir);
  } finally {
    await watch.kill();
  }
});
