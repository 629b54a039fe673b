/**
 * Specification of the WAL collector (src/watch/collector.ts): new complete transactions of
 * a WAL file become sealed segments, in order, each verifiable on its own and chained to the
 * one before. The WAL fixtures are written here with `node:sqlite` and copied (the `-wal`
 * file carries no SQLite locks, so copying it is safe; docs/sqlite-facts.md, fact 1).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { sha256Hex } from "../../src/support/hash.ts";
import { decodeSegment, parseSegmentMetadata, segmentBodyOf } from "../../src/history/segment.ts";
import { verifySegment, walFrameHeaderSize, walHeaderSize } from "../../src/format/wal.ts";
import {
  type CollectedSegment,
  type CollectOutcome,
  collectSegments,
  segmentBytes,
} from "../../src/watch/collector.ts";
import type { Lineage } from "../../src/watch/lineage.ts";

const pageSize = 4096;
const snapshotSha = "5".repeat(64);
const frameSize = walFrameHeaderSize + pageSize;

/** A WAL database that never checkpoints, and a place for copies of its `-wal`. */
async function walSource() {
  const dir = await Deno.makeTempDir({ prefix: "walsync-collector-" });
  const path = join(dir, "src.db");
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA page_size=${pageSize}; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;`);
  db.exec("CREATE TABLE t(n INTEGER, b BLOB)");
  const fixture = join(dir, "fixture.db-wal");
  return {
    dir,
    db,
    fixture,
    /** Commits `count` transactions of `rows` rows of `bytes` random bytes each. */
    commit(count: number, rows = 1, bytes = 100) {
      for (let i = 0; i < count; i++) {
        db.exec("BEGIN");
        for (let r = 0; r < rows; r++) db.exec(`INSERT INTO t VALUES (${i}, randomblob(${bytes}))`);
        db.exec("COMMIT");
      }
    },
    /** Copies the live `-wal` to the fixture path, cut to `length` bytes if given. */
    async snapshotWal(length?: number) {
      const bytes = await Deno.readFile(`${path}-wal`);
      await Deno.writeFile(fixture, length === undefined ? bytes : bytes.subarray(0, length));
      return bytes;
    },
    async close() {
      db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function newLineage(): Lineage {
  return {
    generation: "g",
    pageSize,
    header: null,
    position: null,
    txid: 10,
    prevSha256: snapshotSha,
    startedAt: 0,
    walInode: null,
    checkpointedAt: -1,
  };
}

async function collect(l: Lineage, walPath: string) {
  const segments: CollectedSegment[] = [];
  const buffer = { bytes: new Uint8Array(0), limit: 2 * segmentBytes };
  const outcome: CollectOutcome = await collectSegments(
    l,
    walPath,
    "app.db",
    buffer,
    (s) => segments.push(s),
  );
  return { outcome, segments };
}

/** A segment's stored body (read from its spill file if it has one). */
function bodyOf(s: CollectedSegment): Uint8Array {
  return s.body instanceof Uint8Array ? s.body : Deno.readFileSync(s.body.path);
}

/** Decodes and verifies a sealed segment as a restore would; returns its raw frames. */
function openSegment(s: CollectedSegment): Uint8Array {
  const info = parseSegmentMetadata(s.key, s.metadata);
  const frames = decodeSegment(s.key, bodyOf(s), segmentBodyOf(s.key, s.metadata, info));
  verifySegment(frames, info);
  return frames;
}

Deno.test("collector: every committed transaction of a WAL becomes one sealed segment continuing the lineage's txids, verifiable alone", async () => {
  const src = await walSource();
  try {
    src.commit(20);
    const wal = await src.snapshotWal();
    const l = newLineage();
    const { outcome, segments } = await collect(l, src.fixture);
    assert.equal(outcome.newGeneration, undefined);
    assert.equal(segments.length, 1);
    const meta = parseSegmentMetadata(segments[0].key, segments[0].metadata);
    // CREATE TABLE and 20 inserts: 21 commits, txids 11..31.
    assert.equal(meta.txidFirst, 11);
    assert.equal(meta.txidLast, 31);
    assert.equal(meta.prevSha256, snapshotSha);
    assert.deepEqual(openSegment(segments[0]), wal.subarray(walHeaderSize));
    assert.equal(l.txid, 31);
    assert.equal(l.position!.offset, wal.byteLength);
    assert.equal(l.prevSha256, sha256Hex(bodyOf(segments[0])));
  } finally {
    await src.close();
  }
});

Deno.test("collector: a second read ships only what was committed since, chained to the first segment; nothing new gives nothing", async () => {
  const src = await walSource();
  try {
    src.commit(3);
    await src.snapshotWal();
    const l = newLineage();
    const first = await collect(l, src.fixture);
    const again = await collect(l, src.fixture);
    assert.equal(again.segments.length, 0);
    assert.deepEqual(again.outcome, { frames: 0, behind: false });
    src.commit(2);
    await src.snapshotWal();
    const next = await collect(l, src.fixture);
    assert.equal(next.segments.length, 1);
    const meta = parseSegmentMetadata(next.segments[0].key, next.segments[0].metadata);
    assert.equal(meta.txidFirst, 15);
    assert.equal(meta.txidLast, 16);
    assert.equal(meta.prevSha256, sha256Hex(bodyOf(first.segments[0])));
  } finally {
    await src.close();
  }
});

Deno.test("collector: frames of a transaction not yet committed (a WAL cut inside it) are left for later", async () => {
  const src = await walSource();
  try {
    src.commit(2);
    const committed = (await src.snapshotWal()).byteLength;
    src.commit(1, 20, 3000); // one transaction of many pages
    const whole = await src.snapshotWal(committed + 5 * frameSize);
    assert.ok(whole.byteLength > committed + 5 * frameSize);
    const l = newLineage();
    const { segments } = await collect(l, src.fixture);
    assert.equal(segments.length, 1);
    assert.equal(l.position!.offset, committed);
    assert.equal(parseSegmentMetadata(segments[0].key, segments[0].metadata).txidLast, 13);
  } finally {
    await src.close();
  }
});

Deno.test("collector: a backlog larger than the segment bound is cut into several segments, each ending on a commit, together the whole WAL", async () => {
  const src = await walSource();
  try {
    src.commit(45, 200, 3000); // 45 transactions of ~200 pages: about 37 MB of WAL
    const wal = await src.snapshotWal();
    assert.ok(wal.byteLength > 2 * segmentBytes);
    const l = newLineage();
    const { outcome, segments } = await collect(l, src.fixture);
    assert.ok(segments.length >= 3, `${segments.length} segments`);
    assert.equal(outcome.newGeneration === undefined && outcome.behind, false);
    let expectTxid = 11;
    let prev = snapshotSha;
    const parts: Uint8Array[] = [];
    for (const s of segments) {
      const meta = parseSegmentMetadata(s.key, s.metadata);
      assert.equal(meta.txidFirst, expectTxid);
      assert.equal(meta.prevSha256, prev);
      expectTxid = meta.txidLast + 1;
      prev = sha256Hex(bodyOf(s));
      parts.push(openSegment(s));
    }
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      joined.set(p, at);
      at += p.byteLength;
    }
    assert.deepEqual(joined, wal.subarray(walHeaderSize));
  } finally {
    await src.close();
  }
});

Deno.test("collector: a WAL with another page size, or a WAL gone after one was read, asks for a new generation", async () => {
  const src = await walSource();
  try {
    src.commit(1);
    await src.snapshotWal();
    const other = { ...newLineage(), pageSize: 1024 };
    assert.ok((await collect(other, src.fixture)).outcome.newGeneration);
    const l = newLineage();
    await collect(l, src.fixture);
    await Deno.remove(src.fixture);
    assert.match((await collect(l, src.fixture)).outcome.newGeneration ?? "", /disappeared/);
  } finally {
    await src.close();
  }
});

Deno.test("collector: one transaction larger than the segment bound is streamed into a spill file, one segment that verifies, chained like any other", async () => {
  const src = await walSource();
  try {
    src.commit(1);
    src.commit(1, 6000, 3000); // one transaction of about 24 MB of WAL
    src.commit(1);
    const wal = await src.snapshotWal();
    const l = newLineage();
    const { segments } = await collect(l, src.fixture);
    const spilled = segments.filter((s) => !(s.body instanceof Uint8Array));
    assert.equal(spilled.length, 1);
    const meta = parseSegmentMetadata(spilled[0].key, spilled[0].metadata);
    assert.equal(meta.txidFirst, meta.txidLast);
    assert.ok(meta.frameCount * frameSize > segmentBytes);
    let prev = snapshotSha;
    const parts: Uint8Array[] = [];
    for (const s of segments) {
      assert.equal(parseSegmentMetadata(s.key, s.metadata).prevSha256, prev);
      prev = sha256Hex(bodyOf(s));
      parts.push(openSegment(s));
    }
    assert.equal(l.position!.offset, wal.byteLength);
    assert.equal(parts.reduce((n, p) => n + p.byteLength, 0), wal.byteLength - walHeaderSize);
    await Deno.remove(spilled[0].body instanceof Uint8Array ? "" : spilled[0].body.path);
  } finally {
    await src.close();
  }
});
