/**
 * The in-place image a snapshot uploads: while it is held open, it is exactly the committed
 * state it began with, whatever writers and checkpoints do meanwhile.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { hashSource } from "../../src/support/hash.ts";
import { openSnapshotImage, type SnapshotImage } from "../../src/format/snapshot_image.ts";

/** A digest of the table's rows, to compare two databases by content. */
function contentOf(db: DatabaseSync): string {
  const hash = createHash("sha256");
  for (const row of db.prepare("SELECT rowid, hex(x) AS x FROM t ORDER BY rowid").iterate()) {
    const r = row as { rowid: number; x: string };
    hash.update(`${r.rowid}:${r.x}\n`);
  }
  return hash.digest("hex");
}

async function withWriter(
  journal: "wal" | "delete",
  body: (writer: DatabaseSync, path: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "walsync-image-test-" });
  const path = join(dir, "app.db");
  const writer = new DatabaseSync(path);
  try {
    writer.exec(`PRAGMA journal_mode=${journal}; PRAGMA wal_autocheckpoint=0;`);
    writer.exec("CREATE TABLE t(x BLOB)");
    await body(writer, path, dir);
  } finally {
    writer.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function commit(writer: DatabaseSync, rows: number, size: number): void {
  writer.exec(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) ` +
      `INSERT INTO t(x) SELECT randomblob(${size}) FROM n`,
  );
}

/** Writes the image to a file and returns what it holds. */
async function materialise(image: SnapshotImage, path: string) {
  const bytes = new Uint8Array(image.size);
  assert.equal(await image.read(0, bytes), image.size);
  await Deno.writeFile(path, bytes);
  const copy = new DatabaseSync(path, { readOnly: true });
  try {
    const check = copy.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
    return { integrity: check.integrity_check, content: contentOf(copy), bytes };
  } finally {
    copy.close();
  }
}

Deno.test("image: frames still in the WAL are part of it, later commits are not", async () => {
  await withWriter("wal", async (writer, path, dir) => {
    commit(writer, 200, 3000);
    writer.exec("PRAGMA wal_checkpoint(PASSIVE)");
    commit(writer, 50, 5000);
    writer.exec("UPDATE t SET x = randomblob(100) WHERE rowid % 3 = 0");
    const expected = contentOf(writer);
    const image = await openSnapshotImage(path);
    try {
      assert.ok(image.walPages > 0, "the test needs pages that only the WAL holds");
      commit(writer, 100, 4000);
      writer.exec("DELETE FROM t WHERE rowid % 5 = 0");
      writer.exec("PRAGMA wal_checkpoint(PASSIVE)");
      const read = await materialise(image, join(dir, "image.db"));
      assert.equal(read.integrity, "ok");
      assert.equal(read.content, expected);
      const digest = await hashSource(image);
      assert.equal(digest.sha256, createHash("sha256").update(read.bytes).digest("hex"));
    } finally {
      image.close();
    }
  });
});

Deno.test("image: a WAL restarted under a fully checkpointed image does not leak in", async () => {
  await withWriter("wal", async (writer, path, dir) => {
    commit(writer, 300, 3000);
    // Every frame copied, WAL kept: the image's reader may take slot 0, and then the next
    // commit restarts the WAL and overwrites the frames the state was committed in.
    writer.exec("PRAGMA wal_checkpoint(PASSIVE)");
    const expected = contentOf(writer);
    const image = await openSnapshotImage(path);
    try {
      writer.exec("UPDATE t SET x = randomblob(3000)");
      commit(writer, 20, 3000);
      const read = await materialise(image, join(dir, "image.db"));
      assert.equal(read.integrity, "ok");
      assert.equal(read.content, expected);
    } finally {
      image.close();
    }
    assert.notEqual(contentOf(writer), expected);
  });
});

Deno.test("image: a rollback-journal database is read under its shared lock", async () => {
  await withWriter("delete", async (writer, path, dir) => {
    commit(writer, 100, 2000);
    const expected = contentOf(writer);
    const image = await openSnapshotImage(path);
    try {
      assert.equal(image.walPages, 0);
      assert.throws(() => commit(writer, 1, 10), /locked|busy/i);
      const read = await materialise(image, join(dir, "image.db"));
      assert.equal(read.integrity, "ok");
      assert.equal(read.content, expected);
    } finally {
      image.close();
    }
    commit(writer, 1, 10); // the lock went with the image
  });
});

Deno.test("image: reads at any offset and length match the whole", async () => {
  await withWriter("wal", async (writer, path) => {
    commit(writer, 64, 1500);
    const image = await openSnapshotImage(path);
    try {
      const whole = new Uint8Array(image.size);
      await image.read(0, whole);
      for (const [offset, length] of [[0, 1], [100, 5000], [4095, 2], [image.size - 7, 100]]) {
        const part = new Uint8Array(length);
        const n = await image.read(offset, part);
        assert.equal(n, Math.min(length, image.size - offset));
        assert.deepEqual(part.subarray(0, n), whole.subarray(offset, offset + n));
      }
    } finally {
      image.close();
    }
  });
});

Deno.test("image: reading it keeps SQLite's locks, so another process's last close leaves the WAL", async () => {
  await withWriter("wal", async (writer, path, dir) => {
    commit(writer, 100, 3000);
    const expected = contentOf(writer);
    const image = await openSnapshotImage(path);
    try {
      assert.ok(image.walPages > 0);
      await materialise(image, join(dir, "first.db"));
      // The sqlite3 CLI commits and closes: were this process's locks gone, it would think
      // itself the last connection, checkpoint everything and delete the WAL.
      const cli = await new Deno.Command("sqlite3", {
        args: [path, "INSERT INTO t(x) VALUES (randomblob(5000));"],
        stderr: "piped",
      }).output();
      assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
      assert.ok((await Deno.stat(`${path}-wal`)).size > 0, "the WAL was checkpointed away");
      const read = await materialise(image, join(dir, "second.db"));
      assert.equal(read.integrity, "ok");
      assert.equal(read.content, expected);
    } finally {
      image.close();
    }
  });
});
