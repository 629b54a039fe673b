/**
 * Specification of reading SQLite's wal-index header (src/format/wal.ts `parseWalIndexHeader`, and
 * the `committed` bound of `readWalFile`). The `-shm` bytes are read by a child process:
 * this process holds a connection to the database, and opening and closing a descriptor of
 * its `-shm` here would drop that connection's locks (docs/sqlite-facts.md, fact 1).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  parseWalHeader,
  parseWalIndexHeader,
  readWalFile,
  walFrameHeaderSize,
  walHeaderSize,
} from "../../src/format/wal.ts";
import { openWalIndex } from "../../src/format/wal_index.ts";

async function shmBytes(path: string): Promise<Uint8Array> {
  const out = await new Deno.Command("head", { args: ["-c", "96", path] }).output();
  return out.stdout;
}

async function liveDatabase() {
  const dir = await Deno.makeTempDir({ prefix: "walsync-walindex-" });
  const path = join(dir, "app.db");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA page_size=4096; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;");
  db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);");
  return {
    path,
    db,
    async close() {
      db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("wal-index: the header SQLite publishes names the WAL's salts, page size and the last committed frame", async () => {
  const live = await liveDatabase();
  try {
    const index = parseWalIndexHeader(await shmBytes(`${live.path}-shm`));
    assert.ok(index);
    const wal = await Deno.readFile(`${live.path}-wal`);
    const header = parseWalHeader(wal);
    assert.equal(index.salt1, header.salt1);
    assert.equal(index.salt2, header.salt2);
    assert.equal(index.pageSize, 4096);
    assert.equal(walHeaderSize + index.mxFrame * (walFrameHeaderSize + 4096), wal.byteLength);
    live.db.exec("INSERT INTO t VALUES (3)");
    const next = parseWalIndexHeader(await shmBytes(`${live.path}-shm`));
    assert.ok(next && next.change > index.change && next.mxFrame > index.mxFrame);
  } finally {
    await live.close();
  }
});

Deno.test("wal-index: copies that differ, a checksum that does not match, or an uninitialised header read as unknown (null)", async () => {
  const live = await liveDatabase();
  try {
    const good = await shmBytes(`${live.path}-shm`);
    assert.ok(parseWalIndexHeader(good));
    const torn = good.slice();
    torn[16] ^= 1; // the first copy's mxFrame moved, the second's not yet
    assert.equal(parseWalIndexHeader(torn), null);
    const bad = good.slice();
    bad[16] ^= 1;
    bad[48 + 16] ^= 1; // both copies agree, but the checksum does not
    assert.equal(parseWalIndexHeader(bad), null);
    assert.equal(parseWalIndexHeader(new Uint8Array(96)), null);
    assert.equal(parseWalIndexHeader(good.subarray(0, 60)), null);
  } finally {
    await live.close();
  }
});

Deno.test("wal-index: readWalFile never returns frames past the published max frame, and nothing of a WAL the index does not describe", async () => {
  const live = await liveDatabase();
  try {
    const index = parseWalIndexHeader(await shmBytes(`${live.path}-shm`))!;
    live.db.exec("INSERT INTO t VALUES (3)"); // committed after the index was read
    const walPath = `${live.path}-wal`;
    const all = await readWalFile(walPath, null, null);
    const bounded = await readWalFile(walPath, null, null, Infinity, undefined, index);
    assert.ok(all && !all.restarted && bounded && !bounded.restarted);
    assert.equal(bounded.frameCount, index.mxFrame);
    assert.ok(all.frameCount > bounded.frameCount);
    const otherWal = { ...index, salt1: index.salt1 + 1 };
    const none = await readWalFile(walPath, null, null, Infinity, undefined, otherWal);
    assert.ok(none && !none.restarted);
    assert.equal(none.frameCount, 0);
  } finally {
    await live.close();
  }
});

/** Descriptors of this process open on `path`. */
function descriptorsOn(path: string): number {
  let count = 0;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === path) count++;
    } catch { /* closed meanwhile */ }
  }
  return count;
}

Deno.test("wal-index: watchers of one database share one -shm descriptor, closed only when the last lets go", async () => {
  const live = await liveDatabase();
  try {
    const shm = `${live.path}-shm`;
    const before = descriptorsOn(shm); // SQLite's own
    const a = openWalIndex(shm);
    const b = openWalIndex(shm);
    assert.equal(descriptorsOn(shm), before + 1);
    a.release();
    a.release(); // idempotent
    assert.equal(descriptorsOn(shm), before + 1);
    assert.ok(b.read(), "still readable by the other watcher");
    b.release();
    assert.equal(descriptorsOn(shm), before);
  } finally {
    await live.close();
  }
});
