/**
 * Restore's plan and `verify`, in process against a `file://` bucket in a temporary directory:
 * `planRestore` (src/ops/restore.ts) over a real history and over a hand-made listing, and
 * `verifyDatabase` (src/ops/verify.ts) on an intact and on a damaged backup. The source databases are
 * written with `node:sqlite` and snapshotted with `takeSnapshot`, so no process is started.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { CatalogObject, DatabaseCatalog } from "../../src/history/catalog.ts";
import { WalsyncError } from "../../src/support/errors.ts";
import { readHistory } from "../../src/history/read.ts";
import { generationTime, snapshotKey, walSegmentKey } from "../../src/format/layout.ts";
import { planRestore, restoreDatabase } from "../../src/ops/restore.ts";
import { takeSnapshot } from "../../src/ops/snapshot.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { verifyDatabase } from "../../src/ops/verify.ts";
import { fileBucket, storageOf, type TestBucket } from "../support/bucket.ts";
import { filesIn } from "../support/files.ts";
import { tamper } from "../support/layout.ts";

/** A WAL database `app.db` in `dir` holding `rows` rows, written in process. */
function sourceDatabase(dir: string, rows: number): string {
  const path = join(dir, "app.db");
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)");
    const insert = db.prepare("INSERT INTO t(v) VALUES (?)");
    for (let i = 0; i < rows; i++) insert.run(`row ${i} ${"x".repeat(200)}`);
  } finally {
    db.close();
  }
  return path;
}

/** A fresh `file://` bucket with two snapshots of `app.db` (two generations), and its storage. */
async function bucketWithTwoSnapshots(): Promise<{
  bucket: TestBucket;
  storage: Storage;
  snapshots: { generation: string; key: string; txid: number }[];
  dir: string;
}> {
  const bucket = await fileBucket();
  const storage = await storageOf(bucket);
  const dir = await Deno.makeTempDir({ prefix: "walsync-unit-" });
  const source = sourceDatabase(dir, 20);
  const first = await takeSnapshot(storage, source);
  await new Promise((r) => setTimeout(r, 5)); // distinct generation ids
  sourceDatabase(dir, 20);
  const second = await takeSnapshot(storage, source);
  return { bucket, storage, snapshots: [first, second], dir };
}

async function cleanUp(bucket: TestBucket, storage: Storage, dir: string): Promise<void> {
  storage.close();
  await Deno.remove(dir, { recursive: true });
  await Deno.remove((bucket as TestBucket & { dir: string }).dir, { recursive: true });
}

Deno.test("planRestore over a file:// history: the latest is the newest generation's snapshot; a txid picks the generation holding it; out of range names the range", async () => {
  const { bucket, storage, snapshots, dir } = await bucketWithTwoSnapshots();
  try {
    const [first, second] = snapshots;
    assert.ok(second.txid > first.txid, "txids continue across generations");
    const { catalog } = await readHistory(storage, "app.db");

    const latest = planRestore(catalog);
    assert.equal(latest.db, "app.db");
    assert.equal(latest.generation.id, second.generation);
    assert.equal(latest.snapshot.key, second.key);
    assert.deepEqual(latest.segments, []);
    assert.equal(latest.bytes, latest.snapshot.size);

    const older = planRestore(catalog, { txid: first.txid });
    assert.equal(older.generation.id, first.generation);
    assert.equal(older.snapshot.key, first.key);
    assert.equal(older.stopTxid, first.txid);

    assert.throws(
      () => planRestore(catalog, { txid: second.txid + 100 }),
      (err: unknown) =>
        err instanceof WalsyncError && err.kind === "failure" &&
        err.message.includes(`reaches txid ${second.txid + 100}`) &&
        err.message.includes(`to ${second.txid} are stored`),
    );
    assert.throws(
      () => planRestore({ db: "other.db", generations: [], unknown: [] }),
      (err: unknown) =>
        err instanceof WalsyncError && err.kind === "failure" &&
        /no snapshot of other\.db/.test(err.message),
    );
  } finally {
    await cleanUp(bucket, storage, dir);
  }
});

Deno.test("planRestore over a listing: the segments after the snapshot in order, stopping at a txid; a gap is an integrity error naming the segment", () => {
  const db = "app.db";
  const id = "20260101T000000000Z-00000001";
  const object = (key: string, txid: number, lastTxid = txid, size = 10): CatalogObject => ({
    key,
    txid,
    lastTxid,
    size,
  });
  const catalogOf = (segments: CatalogObject[]): DatabaseCatalog => ({
    db,
    generations: [{
      id,
      started: generationTime(id),
      snapshots: [object(snapshotKey(db, id, 4), 4, 4, 100)],
      segments,
    }],
    unknown: [],
  });
  const before = object(walSegmentKey(db, id, 1, 4), 1, 4);
  const a = object(walSegmentKey(db, id, 5, 6), 5, 6);
  const b = object(walSegmentKey(db, id, 7, 9), 7, 9);
  const c = object(walSegmentKey(db, id, 10, 10), 10);

  const all = planRestore(catalogOf([before, a, b, c]));
  assert.deepEqual(all.segments.map((s) => s.key), [a.key, b.key, c.key]);
  assert.equal(all.bytes, 100 + 3 * 10);

  const upTo = planRestore(catalogOf([before, a, b, c]), { txid: 8 });
  assert.deepEqual(upTo.segments.map((s) => s.key), [a.key, b.key], "b holds txid 8");
  assert.equal(upTo.stopTxid, 8);

  assert.throws(
    () => planRestore(catalogOf([a, c])),
    (err: unknown) =>
      err instanceof WalsyncError && err.kind === "integrity" &&
      err.message.startsWith(`${c.key}: gap in the WAL sequence`),
  );
});

Deno.test("verifyDatabase on a file:// bucket: an intact backup has no failures; a flipped byte in a stored snapshot is one failure naming its key", async () => {
  const { bucket, storage, snapshots, dir } = await bucketWithTwoSnapshots();
  try {
    const intact = await verifyDatabase(storage, "app.db");
    assert.equal(intact.db, "app.db");
    assert.deepEqual(intact.failures, []);
    assert.equal(intact.generations, 2);
    assert.equal(intact.format, 3);
    for (const s of snapshots) assert.ok(intact.digests[s.key], `${s.key} was read`);

    const damaged = snapshots[0].key;
    await tamper(bucket, damaged);
    const report = await verifyDatabase(storage, "app.db");
    assert.equal(report.failures.length, 1, JSON.stringify(report.failures));
    assert.equal(report.failures[0].key, damaged);
    assert.match(report.failures[0].problem, /SHA256 mismatch/);
  } finally {
    await cleanUp(bucket, storage, dir);
  }
});

Deno.test("restore of a snapshot whose digests all match but whose pages fail integrity_check: exit 5 with SQLite's finding on one line, nothing left in the output directory", async () => {
  const bucket = await fileBucket();
  const storage = await storageOf(bucket);
  const dir = await Deno.makeTempDir({ prefix: "walsync-unit-" });
  try {
    // A rollback-journal database of several 4 KiB pages; its last page is a table leaf. The
    // fragmented-bytes count in that leaf's header (offset 7) is wrong: SQLite reads every row,
    // so the snapshot goes up with honest digests, but integrity_check reports the page.
    const source = join(dir, "app.db");
    const db = new DatabaseSync(source);
    db.exec("PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
    const insert = db.prepare("INSERT INTO t(v) VALUES (?)");
    for (let i = 0; i < 200; i++) insert.run(`row ${i} ${"x".repeat(200)}`);
    db.close();
    const bytes = await Deno.readFile(source);
    const lastPage = bytes.byteLength - 4096;
    assert.equal(bytes[lastPage], 0x0d, "the last page is a table leaf");
    bytes[lastPage + 7] = 9;
    await Deno.writeFile(source, bytes);
    await takeSnapshot(storage, source);

    const outDir = join(dir, "out");
    await Deno.mkdir(outDir);
    await assert.rejects(
      () => restoreDatabase(storage, "app.db", { output: join(outDir, "restored.db") }),
      (err: unknown) =>
        err instanceof WalsyncError && err.kind === "integrity" &&
        /fails PRAGMA integrity_check: .*Fragmentation of 0 bytes reported as 9 on page 14/.test(
          err.message,
        ) && !err.message.includes("\n"),
    );
    assert.deepEqual(await filesIn(outDir), [], "no output and no temporary file");
  } finally {
    await cleanUp(bucket, storage, dir);
  }
});
