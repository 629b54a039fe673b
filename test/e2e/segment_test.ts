/**
 * Every reader of compressed WAL segments (restore, verify, replicate) on buckets built here, in
 * process,
 * from a real WAL written by the `sqlite3` CLI, so that they do not depend on what
 * `walsync watch` uploads. Integrity is layered: SHA256 of the stored bytes, then the zstd
 * frame and its content checksum and the declared decoded size, then the WAL checks. The codec
 * itself is tested in `test/unit/segment_codec_test.ts`.
 */
import { createHistoryWriter } from "../../src/history/writer.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { zstdDecompressSync } from "node:zlib";
import { meta, walSegmentKey } from "../../src/format/layout.ts";
import { putBytesObject } from "../../src/storage/object.ts";
import { encodeSegment, segmentMetadata } from "../../src/history/segment.ts";
import { takeSnapshot } from "../../src/ops/snapshot.ts";
import {
  readWalFile,
  segmentInfoOf,
  type WalHeader,
  type WalPosition,
  walStartPosition,
} from "../../src/format/wal.ts";
import {
  backends,
  fileBucket,
  type RawObject,
  sdkTest,
  sha256,
  storageOf,
  type TestBucket,
} from "../support/bucket.ts";
import { filesIn, workDir } from "../support/files.ts";
import { dbFingerprint, sqlite } from "../support/sqlite.ts";
import { walsync } from "../support/walsync.ts";

// ---------------------------------------------------------------------------------------
// Helpers

/** A blob literal holding every byte value, `repeat` times over. */
function allBytesLiteral(repeat: number): string {
  const one = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0")).join("");
  return `X'${one.repeat(repeat)}'`;
}

/** Commits per segment: each string is one transaction (one `sqlite3` process). */
const workload: readonly (readonly string[])[] = [
  [`INSERT INTO t(b, s) VALUES (${allBytesLiteral(1)}, 'all byte values');`],
  [
    // Larger than a page: overflow pages.
    `INSERT INTO t(b, s) VALUES (${allBytesLiteral(40)}, 'all byte values, 40 times');`,
    "UPDATE t SET s = 'updated' WHERE id = 1;",
    "INSERT INTO t(b, s) SELECT randomblob(300), 'row ' || value FROM generate_series(1, 200);",
  ],
  ["DELETE FROM t WHERE id > 50;", "VACUUM;"],
  ["INSERT INTO t(b, s) VALUES (zeroblob(3000), 'last');"],
];

/** A bucket holding a snapshot and one segment per workload entry, and what each txid holds. */
interface BuiltBucket {
  db: string;
  dir: string;
  /** Segment keys, in order. */
  segments: string[];
  /** The snapshot's txid. */
  snapshotTxid: number;
  /** `.sha3sum` of the source after each txid. */
  states: Map<number, string>;
}

/**
 * Writes the workload with the `sqlite3` CLI and uploads its WAL frames as segments the way
 * `walsync watch` does, encoded when `encode(index)` says so. A `node:sqlite` connection
 * holds the WAL open meanwhile (and no checkpoint runs), so every frame stays in it.
 */
async function buildBucket(
  bucket: TestBucket,
  encode: (index: number) => boolean,
): Promise<BuiltBucket> {
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(
    db,
    "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; " +
      "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB, s TEXT); " +
      "INSERT INTO t(b, s) VALUES (x'00ff', 'before the snapshot');",
  );
  const storage = await storageOf(bucket);
  try {
    const snap = await takeSnapshot(storage, db);
    // This test is the writer: it moves the head after each segment, as watch does (format 3).
    const history = createHistoryWriter(storage, "app.db");
    await history.acquire();
    const states = new Map([[snap.txid, (await dbFingerprint(db)).sha3]]);
    // One read puts the connection in WAL mode; it then keeps the CLI from deleting the WAL.
    const conn = new DatabaseSync(db);
    try {
      conn.prepare("SELECT count(*) FROM sqlite_master").get();
      let header: WalHeader | null = null;
      let position: WalPosition | null = null;
      let txid = snap.txid;
      let prevSha256 = snap.sha256;
      const segments: string[] = [];
      for (const [index, commits] of workload.entries()) {
        const first = txid + 1;
        for (const sql of commits) {
          await sqlite(db, `PRAGMA wal_autocheckpoint=0; ${sql}`);
          states.set(++txid, (await dbFingerprint(db)).sha3);
        }
        const read = await readWalFile(`${db}-wal`, header, position);
        assert.ok(read !== null && !read.restarted, "the WAL kept its frames");
        assert.equal(read.commits, commits.length);
        const info = segmentInfoOf(read.header, position ?? walStartPosition(read.header), read);
        const key = walSegmentKey("app.db", snap.generation, first, txid);
        const metadata = segmentMetadata({
          ...info,
          txidFirst: first,
          txidLast: txid,
          prevSha256,
          created: new Date().toISOString(),
          db: "app.db",
          generation: snap.generation,
        });
        let written;
        if (encode(index)) {
          const encoded = encodeSegment(read.frames);
          written = await putBytesObject(storage, key, encoded.body, {
            ...metadata,
            ...encoded.metadata,
          });
        } else {
          written = await putBytesObject(storage, key, read.frames, metadata);
        }
        await history.advance({ txid, key, sha256: written.sha256 });
        segments.push(key);
        header = read.header;
        position = read.end;
        prevSha256 = written.sha256;
      }
      return { db, dir, segments, snapshotTxid: snap.txid, states };
    } finally {
      await history.release();
      conn.close();
    }
  } finally {
    storage.close();
  }
}

/** `object` with its `sha256` and size metadata made to match its (new) bytes again. */
function resealed(object: RawObject): RawObject {
  return {
    bytes: object.bytes,
    metadata: {
      ...object.metadata,
      [meta.sha256]: sha256(object.bytes),
      [meta.size]: String(object.bytes.byteLength),
    },
  };
}

/** Restores the latest state (or `extra`'s point) into a fresh file; returns the CLI's result. */
async function restore(bucket: TestBucket, dir: string, extra: string[] = []) {
  const out = join(dir, `restored-${crypto.randomUUID().slice(0, 8)}.db`);
  const r = await walsync(["restore", "app.db", "-b", bucket.arg, "-o", out, ...extra], {
    env: bucket.env,
  });
  return { ...r, out };
}

/** Asserts a restore of the latest state (or `extra`'s point) holds `sha3` and is intact. */
async function assertRestores(bucket: TestBucket, dir: string, sha3: string, extra: string[] = []) {
  const r = await restore(bucket, dir, extra);
  assert.equal(r.code, 0, r.stderr);
  const got = await dbFingerprint(r.out);
  assert.equal(got.integrity, "ok");
  assert.equal(got.sha3, sha3, `restore ${extra.join(" ")} differs from the source`);
}

/** Asserts restore and verify exit 5 naming `key` with `problem`, and restore writes nothing. */
async function assertRejected(bucket: TestBucket, dir: string, key: string, problem: RegExp) {
  const outDir = join(dir, `out-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(outDir);
  const r = await walsync(["restore", "app.db", "-b", bucket.arg, "-o", join(outDir, "r.db")], {
    env: bucket.env,
  });
  assert.equal(r.code, 5, r.stderr);
  assert.ok(r.stderr.includes(key), r.stderr);
  assert.match(r.stderr, problem);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  assert.deepEqual(await filesIn(outDir), [], "nothing written, no temporary file left");

  const v = await walsync(["verify", "app.db", "-b", bucket.arg], { env: bucket.env });
  assert.equal(v.code, 5, v.stdout + v.stderr);
  assert.ok(v.stdout.includes(key), v.stdout);
  assert.match(v.stdout, problem);
  const vj = await walsync(["verify", "app.db", "-b", bucket.arg, "--json"], { env: bucket.env });
  assert.equal(vj.code, 5);
  const report = JSON.parse(vj.stdout);
  assert.deepEqual(
    report.failures.map((f: { key: string }) => f.key),
    [key],
    "verify names the damaged segment, and only it",
  );
}

// ---------------------------------------------------------------------------------------
// Restore, verify and replicate

for (const backend of backends) {
  Deno.test(
    `${backend.name}: compressed segments restore exactly at every txid, verify passes, and replicate applies them`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const built = await buildBucket(bucket, () => true);
      for (const key of built.segments) {
        const raw = await bucket.read(key);
        assert.equal(raw.metadata["walsync-encoding"], "zstd", key);
        assert.equal(raw.metadata["walsync-format"], "3", key);
        // sha256 and size describe the stored (compressed) bytes, as a plain GET sees them.
        assert.equal(raw.metadata.sha256, sha256(raw.bytes), key);
        assert.equal(raw.metadata["walsync-size"], String(raw.bytes.byteLength), key);
        const frames = Number(raw.metadata["walsync-frames"]);
        assert.equal(raw.metadata["walsync-decoded-size"], String(frames * (24 + 1024)), key);
        assert.ok(raw.bytes.byteLength < frames * 1048, `${key} is smaller than its frames`);
      }
      const last = Math.max(...built.states.keys());
      await assertRestores(bucket, built.dir, built.states.get(last)!);
      // Inside the three-commit segment: only its first commit, then its first two.
      for (const txid of [built.snapshotTxid + 2, built.snapshotTxid + 3]) {
        await assertRestores(bucket, built.dir, built.states.get(txid)!, ["--txid", String(txid)]);
      }
      const v = await walsync(["verify", "app.db", "-b", bucket.arg], { env: bucket.env });
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const replica = join(built.dir, "replica.db");
      const r = await walsync(
        ["replicate", "app.db", "-b", bucket.arg, "-o", replica, "--once"],
        { env: bucket.env },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await dbFingerprint(replica), {
        sha3: built.states.get(last)!,
        integrity: "ok",
      });
    },
  );
}

Deno.test("file: old raw segments (format 1, no walsync-encoding) still restore and verify, alone and mixed with compressed ones", async () => {
  for (const encode of [() => false, (i: number) => i % 2 === 1]) {
    const bucket = await fileBucket();
    const built = await buildBucket(bucket, encode);
    // What an older Walsync wrote: format 1 everywhere, raw frames.
    for (const key of await bucket.keys()) {
      const raw = await bucket.read(key);
      if (raw.metadata["walsync-encoding"] === undefined) {
        await bucket.write(key, { ...raw, metadata: { ...raw.metadata, "walsync-format": "1" } });
      }
    }
    assert.equal((await bucket.read(built.segments[0])).metadata["walsync-format"], "1");
    await assertRestores(bucket, built.dir, built.states.get(Math.max(...built.states.keys()))!);
    const txid = built.snapshotTxid + 3;
    await assertRestores(bucket, built.dir, built.states.get(txid)!, ["--txid", String(txid)]);
    const v = await walsync(["verify", "app.db", "-b", bucket.arg], { env: bucket.env });
    assert.equal(v.code, 0, v.stdout + v.stderr);
  }
});

/** Ways to damage the compressed segment that holds three commits, and what must be said. */
const tampers: [string, (raw: RawObject) => RawObject, RegExp][] = [
  ["garbage stored bytes whose sha256 metadata matches them", (raw) =>
    resealed({
      bytes: Uint8Array.from({ length: raw.bytes.length }, (_, i) => (i * 131 + 7) & 0xff),
      metadata: raw.metadata,
    }), /zstd body is malformed: not a zstd frame/],
  [
    "a truncated zstd body whose sha256 metadata matches it",
    (raw) =>
      resealed({ bytes: raw.bytes.subarray(0, raw.bytes.length - 9), metadata: raw.metadata }),
    /zstd body is malformed: frame is truncated/,
  ],
  ["a flipped zstd content checksum whose sha256 metadata matches it", (raw) => {
    const bytes = raw.bytes.slice();
    bytes[bytes.length - 2] ^= 0x01;
    return resealed({ bytes, metadata: raw.metadata });
  }, /zstd body does not decode: .*checksum/],
  ["walsync-decoded-size one frame larger than the frames", (raw) => ({
    bytes: raw.bytes,
    metadata: {
      ...raw.metadata,
      "walsync-decoded-size": String(Number(raw.metadata["walsync-decoded-size"]) + 1048),
    },
  }), /walsync-decoded-size metadata differs from walsync-frames/],
  ["walsync-decoded-size and walsync-frames both one frame short", (raw) => ({
    bytes: raw.bytes,
    metadata: {
      ...raw.metadata,
      "walsync-decoded-size": String(Number(raw.metadata["walsync-decoded-size"]) - 1048),
      "walsync-frames": String(Number(raw.metadata["walsync-frames"]) - 1),
    },
  }), /zstd body decodes to more bytes than its metadata says/],
  ["an unknown walsync-encoding", (raw) => ({
    bytes: raw.bytes,
    metadata: { ...raw.metadata, "walsync-encoding": "brotli" },
  }), /unknown walsync-encoding "brotli"/],
  ["walsync-encoding removed (compressed bytes read as raw frames)", (raw) => {
    const metadata = { ...raw.metadata };
    delete metadata["walsync-encoding"];
    return { bytes: raw.bytes, metadata };
  }, /WAL frames fail their checks|segment is \d+ bytes, not a multiple|frame 0 has/],
  ["a well-formed zstd body of damaged frames", (raw) => {
    const frames = zstdDecompressSync(raw.bytes);
    frames[24 + 100] ^= 0x01; // first page: its checksum no longer continues the chain
    const encoded = encodeSegment(frames);
    return resealed({ bytes: encoded.body, metadata: raw.metadata });
  }, /WAL frames fail their checks: frame 0 checksum|frame 0 checksum/],
  ["a walsync-format newer than this build", (raw) => ({
    bytes: raw.bytes,
    metadata: { ...raw.metadata, "walsync-format": "4" },
  }), /written by a newer Walsync \(format 4\); upgrade walsync/],
];

for (const [what, tamper, problem] of tampers) {
  Deno.test(
    `file: ${what} makes restore and verify exit 5 naming the segment, writing nothing`,
    async () => {
      const bucket = await fileBucket();
      const built = await buildBucket(bucket, () => true);
      const target = built.segments[1];
      await bucket.write(target, tamper(await bucket.read(target)));
      await assertRejected(bucket, built.dir, target, problem);
    },
  );
}
