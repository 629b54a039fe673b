/**
 * Compressed WAL segments (src/segment.ts: encodeSegment, segmentBodyOf, decodeSegment) and
 * every reader of segments (restore, verify, replicate) on buckets built here, in process,
 * from a real WAL written by the `sqlite3` CLI, so that they do not depend on what
 * `walsync watch` uploads. Integrity is layered: SHA256 of the stored bytes, then the zstd
 * frame and its content checksum and the declared decoded size, then the WAL checks.
 */
import { createHistoryWriter } from "../../src/history/writer.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { WalsyncError } from "../../src/errors.ts";
import { meta, walSegmentKey } from "../../src/layout.ts";
import { putBytesObject } from "../../src/object.ts";
import {
  decodeSegment,
  encodeSegment,
  type SegmentBody,
  segmentBodyOf,
  segmentMetadata,
} from "../../src/segment.ts";
import { takeSnapshot } from "../../src/snapshot.ts";
import {
  readWalFile,
  type SegmentInfo,
  segmentInfoOf,
  type WalHeader,
  type WalPosition,
  walStartPosition,
} from "../../src/wal.ts";
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

/** Asserts `fn` throws an integrity error naming `key` whose message matches `pattern`. */
function assertIntegrity(fn: () => unknown, key: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WalsyncError, `expected WalsyncError, got ${error}`);
    assert.equal(error.kind, "integrity");
    assert.equal(error.exitCode, 5);
    assert.ok(error.message.startsWith(`${key}: `), error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Mulberry32: a tiny seeded PRNG, so the fuzz test is reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const key =
  "app.db/generations/20260101T000000000Z-00000000/wal/0000000000000002-0000000000000002.wal";

/** A SegmentInfo for `frames` frames of 1024-byte pages (only the sizes matter to decoding). */
function infoOf(frames: number): SegmentInfo {
  return {
    pageSize: 1024,
    salt1: 1,
    salt2: 2,
    bigEndian: false,
    checksumStart: [0, 0],
    checksumEnd: [0, 0],
    frameCount: frames,
    commits: 1,
    commitSize: 1,
  };
}

/** Raw "frames": every byte value 0x00-0xFF, in order and shuffled, `frames` × 1048 bytes. */
function allByteFrames(frames: number, seed = 1): Uint8Array {
  const random = mulberry32(seed);
  const bytes = new Uint8Array(frames * (24 + 1024));
  for (let i = 0; i < bytes.length; i++) bytes[i] = i < bytes.length / 2 ? i % 256 : random() * 256;
  return bytes;
}

// ---------------------------------------------------------------------------------------
// Encoding and decoding

Deno.test("encodeSegment: zstd level 1 with a content checksum; every byte value 0x00-0xFF round-trips", () => {
  const raw = allByteFrames(6);
  assert.equal(new Set(raw).size, 256);
  const { body, metadata } = encodeSegment(raw);
  assert.deepEqual(metadata, {
    "walsync-encoding": "zstd",
    "walsync-decoded-size": String(raw.byteLength),
  });
  assert.ok(body instanceof Uint8Array);
  assert.ok(body.byteLength < raw.byteLength, "the ordered half compresses");
  assert.deepEqual([...body.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
  assert.equal(body[4] & 0x04, 0x04, "content checksum flag");
  const parsed = segmentBodyOf(key, metadata, infoOf(6));
  assert.deepEqual(parsed, { encoding: "zstd", decodedSize: raw.byteLength });
  const decoded = decodeSegment(key, body, parsed);
  assert.deepEqual(decoded, raw);
  // Incompressible input: node:zlib may append an empty second frame, which is dropped.
  for (const size of [1, 16384, 40_000, 1 << 20]) {
    const noise = new Uint8Array(size);
    for (let at = 0; at < size; at += 65536) {
      crypto.getRandomValues(noise.subarray(at, Math.min(size, at + 65536)));
    }
    const encoded = encodeSegment(noise);
    const declared: SegmentBody = { encoding: "zstd", decodedSize: size };
    assert.deepEqual(decodeSegment(key, encoded.body, declared), noise, `${size} bytes`);
  }
  // A real WAL of small commits is mostly repeated structure: it shrinks many times over.
  const pages = new Uint8Array(100 * 1048);
  for (let f = 0; f < 100; f++) pages.set(raw.subarray(0, 300), f * 1048);
  assert.ok(encodeSegment(pages).body.byteLength * 20 < pages.byteLength);
});

Deno.test("segmentBodyOf: no walsync-encoding is raw; unknown encodings and sizes that do not add up are integrity errors naming the key", () => {
  const info = infoOf(3);
  const size = 3 * 1048;
  assert.deepEqual(segmentBodyOf(key, {}, info), { encoding: "identity", decodedSize: size });
  assert.deepEqual(segmentBodyOf(key, { "walsync-encoding": "identity" }, info), {
    encoding: "identity",
    decodedSize: size,
  });
  assert.deepEqual(
    segmentBodyOf(key, { "walsync-encoding": "zstd", "walsync-decoded-size": String(size) }, info),
    { encoding: "zstd", decodedSize: size },
  );
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-encoding": "brotli" }, info),
    key,
    /unknown walsync-encoding "brotli".*expected identity or zstd, actual brotli/,
  );
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-encoding": "ZSTD" }, info),
    key,
    /unknown walsync-encoding "ZSTD"/,
  );
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-encoding": "zstd" }, info),
    key,
    /walsync-decoded-size metadata is missing/,
  );
  for (const bad of ["", "-1", "1e3", "0x10", "99999999999999999999"]) {
    assertIntegrity(
      () => segmentBodyOf(key, { "walsync-encoding": "zstd", "walsync-decoded-size": bad }, info),
      key,
      /walsync-decoded-size metadata is malformed/,
    );
  }
  assertIntegrity(
    () =>
      segmentBodyOf(
        key,
        { "walsync-encoding": "zstd", "walsync-decoded-size": String(size + 1) },
        info,
      ),
    key,
    new RegExp(`walsync-decoded-size metadata differs.*expected ${size} bytes, actual ${size + 1}`),
  );
  // A raw segment may state its size too; it must add up as well.
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-decoded-size": "5" }, info),
    key,
    /walsync-decoded-size metadata differs/,
  );
  assertIntegrity(
    () => segmentBodyOf(key, {}, { ...info, frameCount: 2 ** 52 }),
    key,
    /not a byte count/,
  );
});

Deno.test("decodeSegment: garbage, truncated, padded, unchecked or mis-sized zstd bodies are integrity errors naming the key", () => {
  const raw = allByteFrames(4, 7);
  const { body } = encodeSegment(raw);
  const sized: SegmentBody = { encoding: "zstd", decodedSize: raw.byteLength };
  assert.deepEqual(decodeSegment(key, body, sized), raw);
  assert.equal(decodeSegment(key, raw, { encoding: "identity", decodedSize: 1 }), raw);

  const cases: [string, Uint8Array, SegmentBody, RegExp][] = [
    ["garbage", Uint8Array.from({ length: 500 }, (_, i) => i * 7), sized, /bad magic/],
    ["empty", new Uint8Array(0), sized, /bad magic/],
    ["raw frames labelled zstd", raw, sized, /bad magic/],
    ["truncated by one byte", body.subarray(0, body.length - 1), sized, /truncated/],
    ["truncated to half", body.subarray(0, body.length >> 1), sized, /truncated/],
    ["header only", body.subarray(0, 6), sized, /truncated/],
    ["trailing bytes", Uint8Array.from([...body, 0, 0]), sized, /2 bytes after the zstd frame/],
    ["two frames", Uint8Array.from([...body, ...body]), sized, /bytes after the zstd frame/],
    [
      "content checksum flipped",
      (() => {
        const b = body.slice();
        b[b.length - 1] ^= 0x10;
        return b;
      })(),
      sized,
      /does not decode.*checksum/,
    ],
    [
      "no content checksum",
      zstdCompressSync(raw, {
        params: { [zlibConstants.ZSTD_c_compressionLevel]: 1 },
      }),
      sized,
      /no content checksum/,
    ],
    [
      "declared size too small",
      body,
      { encoding: "zstd", decodedSize: raw.byteLength - 1048 },
      /more bytes than its metadata says.*expected 3144 bytes/,
    ],
    [
      "declared size too large",
      body,
      { encoding: "zstd", decodedSize: raw.byteLength + 1048 },
      /size other than its metadata says.*expected 5240 bytes, actual 4192 bytes/,
    ],
  ];
  for (const [what, stored, declared, pattern] of cases) {
    try {
      assertIntegrity(() => decodeSegment(key, stored, declared), key, pattern);
    } catch (error) {
      throw new Error(`${what}: ${error}`, { cause: error });
    }
  }
  // A frame that records its content size must record the declared one.
  const pledged = zstdCompressSync(raw.subarray(0, 1000), {
    params: { [zlibConstants.ZSTD_c_checksumFlag]: 1 },
  });
  const withSize = (pledged[4] >> 6) !== 0 || (pledged[4] & 0x20) !== 0;
  if (withSize) {
    assertIntegrity(
      () => decodeSegment(key, pledged, { encoding: "zstd", decodedSize: 1048 }),
      key,
      /frame header says 1000 bytes/,
    );
  }
});

Deno.test("fuzz: random, truncated and bit-flipped bodies and sizes only ever give an integrity error", () => {
  const random = mulberry32(0x5eed);
  const int = (n: number): number => Math.floor(random() * n);
  const raws = [allByteFrames(1, 3), allByteFrames(5, 4), new Uint8Array(3 * 1048)];
  const bodies = raws.map((raw) => encodeSegment(raw).body);
  const counts = { decoded: 0, rejected: 0 };
  for (let i = 0; i < 3000; i++) {
    const which = int(raws.length);
    const real = bodies[which];
    let stored: Uint8Array;
    switch (i % 4) {
      case 0:
        stored = Uint8Array.from({ length: int(600) }, () => int(256));
        if (random() < 0.5 && stored.length >= 4) stored.set(real.subarray(0, 4)); // magic
        break;
      case 1:
        stored = real.slice(0, int(real.byteLength + 1));
        break;
      case 2: {
        stored = real.slice();
        for (let flips = 1 + int(4); flips > 0; flips--) stored[int(stored.length)] ^= 1 << int(8);
        break;
      }
      default:
        stored = Uint8Array.from([...real, ...Array.from({ length: 1 + int(8) }, () => int(256))]);
    }
    const decodedSize = random() < 0.7 ? raws[which].byteLength : int(3) * int(6000);
    const metadata: Record<string, string> = random() < 0.9
      ? { "walsync-encoding": "zstd", "walsync-decoded-size": String(decodedSize) }
      : { "walsync-encoding": ["zstd", "gzip", "", "identity"][int(4)] };
    try {
      const body = segmentBodyOf(key, metadata, infoOf(decodedSize / 1048));
      const decoded = decodeSegment(key, stored, body);
      if (body.encoding === "zstd") assert.equal(decoded.byteLength, body.decodedSize);
      counts.decoded++;
    } catch (error) {
      if (!(error instanceof WalsyncError) || error.kind !== "integrity") {
        throw new Error(`iteration ${i}: ${error}`, { cause: error });
      }
      assert.ok(error.message.startsWith(`${key}: `), error.message);
      counts.rejected++;
    }
  }
  assert.ok(counts.rejected > 2000, JSON.stringify(counts));
  assert.ok(counts.decoded > 10, JSON.stringify(counts));
});

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
