/**
 * Specification of the WAL reader, segment verifier and frame applier (src/format/wal.ts).
 *
 * Real WAL files come from the `sqlite3` CLI. The CLI checkpoints and deletes the WAL when
 * its last connection closes, so each test holds a `node:sqlite` connection to the database
 * (opened once WAL mode is on, and used for one read so it holds SQLite's shared lock) for
 * as long as it needs the WAL. Per docs/sqlite-facts.md fact 1, while that connection is open
 * this process never opens the database file itself; `-wal` is safe to read.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  createFrameApplier,
  parseWalHeader,
  readCommittedFrames,
  readWalFile,
  segmentFrames,
  type SegmentInfo,
  segmentInfoOf,
  verifySegment,
  walChecksum,
  type WalFileRead,
  WalFormatError,
  walFrameHeaderSize,
  type WalHeader,
  walHeaderSize,
  type WalPosition,
  walStartPosition,
} from "../../src/format/wal.ts";

// ---------------------------------------------------------------------------------------
// Helpers

const decoder = new TextDecoder();

/** Runs SQL through the `sqlite3` CLI (a separate process) and returns its output. */
async function sqlite(db: string, sql: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", { args: [db, sql] }).output();
  const stderr = decoder.decode(out.stderr);
  if (!out.success || stderr !== "") throw new Error(`sqlite3 failed: ${stderr}`);
  return decoder.decode(out.stdout);
}

/** Runs one write statement in the CLI without letting it checkpoint on its own. */
function write(db: string, sql: string): Promise<string> {
  return sqlite(db, `PRAGMA wal_autocheckpoint=0; ${sql}`);
}

/** SHA3 of table t's rows, as the CLI computes it (also reads the WAL). */
async function contentHash(db: string): Promise<string> {
  return (await sqlite(db, "SELECT hex(sha3_query('SELECT * FROM t ORDER BY id'))")).trim();
}

/** Asserts the database at `path` passes integrity_check and holds `expectedHash`. */
async function assertRestored(path: string, expectedHash: string): Promise<void> {
  assert.equal((await sqlite(path, "PRAGMA integrity_check")).trim(), "ok");
  assert.equal(await contentHash(path), expectedHash);
}

/** A blob literal holding every byte value, `repeat` times over. */
function allBytesLiteral(repeat: number): string {
  const one = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0")).join("");
  return `X'${one.repeat(repeat)}'`;
}

/** A database in WAL mode with a live connection keeping its WAL alive. */
interface LiveDb {
  dir: string;
  db: string;
  wal: string;
  /** Copy of the database file before any WAL content (only page 1). */
  base: string;
  /** Closes the connection and removes the directory. */
  close(): Promise<void>;
}

async function liveDb(pageSize: number): Promise<LiveDb> {
  const dir = await Deno.makeTempDir({ prefix: "walsync-wal-test-" });
  const db = `${dir}/db`;
  assert.equal(
    (await sqlite(db, `PRAGMA page_size=${pageSize}; PRAGMA journal_mode=WAL;`)).trim(),
    "wal",
  );
  // No connection of ours is open yet, so copying the database file is safe here.
  const base = `${dir}/base`;
  await Deno.copyFile(db, base);
  const conn = new DatabaseSync(db);
  // One read puts the connection in WAL mode: it then holds the shared lock that stops the
  // CLI from checkpointing and deleting the WAL when it exits.
  conn.prepare("SELECT count(*) FROM sqlite_master").get();
  return {
    dir,
    db,
    wal: `${db}-wal`,
    base,
    async close() {
      conn.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function frameSizeOf(pageSize: number): number {
  return walFrameHeaderSize + pageSize;
}

/** Reads the WAL file and asserts it was not restarted. */
async function readFresh(
  path: string,
  header: WalHeader | null,
  position: WalPosition | null,
): Promise<Extract<WalFileRead, { restarted: false }>> {
  const read = await readWalFile(path, header, position);
  assert.ok(read !== null, "WAL file missing");
  assert.equal(read.restarted, false, "WAL unexpectedly restarted");
  return read as Extract<WalFileRead, { restarted: false }>;
}

/** Applies segment bytes to the file at `path` in chunks of `chunkSize` bytes. */
async function applyTo(
  path: string,
  bytes: Uint8Array,
  how: number | SegmentInfo,
  chunkSize = bytes.byteLength,
): Promise<{ frames: number; commits: number; commitSize: number }> {
  const file = await Deno.open(path, { read: true, write: true, create: true });
  try {
    const applier = createFrameApplier(file, how);
    for (let at = 0; at < bytes.byteLength; at += chunkSize) {
      await applier.write(bytes.subarray(at, at + chunkSize));
    }
    return await applier.finish();
  } finally {
    file.close();
  }
}

/** Builds a valid frame continuing the chain at `sum`; returns it and the new chain value. */
function makeFrame(
  header: WalHeader,
  sum: [number, number],
  pgno: number,
  commitSize: number,
  page: Uint8Array,
): { frame: Uint8Array; sum: [number, number] } {
  const frame = new Uint8Array(frameSizeOf(header.pageSize));
  const view = new DataView(frame.buffer);
  view.setUint32(0, pgno);
  view.setUint32(4, commitSize);
  view.setUint32(8, header.salt1);
  view.setUint32(12, header.salt2);
  frame.set(page, walFrameHeaderSize);
  let next = walChecksum(frame.subarray(0, 8), header.bigEndian, sum[0], sum[1]);
  next = walChecksum(frame.subarray(walFrameHeaderSize), header.bigEndian, next[0], next[1]);
  view.setUint32(16, next[0]);
  view.setUint32(20, next[1]);
  return { frame, sum: next };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Mulberry32: a tiny seeded PRNG, so the fuzz tests are reproducible. */
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

/** Asserts `fn` throws a WalFormatError whose message matches `pattern`. */
function assertWalError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WalFormatError, `expected WalFormatError, got ${error}`);
    assert.match(error.message, pattern);
    return true;
  });
}

async function assertWalRejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(fn, (error: unknown) => {
    assert.ok(error instanceof WalFormatError, `expected WalFormatError, got ${error}`);
    assert.match(error.message, pattern);
    return true;
  });
}

/** The workload every "real WAL" test runs, one CLI call (one transaction) per entry. */
const workload: readonly string[] = [
  "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB, s TEXT);",
  `INSERT INTO t(b, s) VALUES (${allBytesLiteral(1)}, 'all byte values');`,
  // Larger than a page: overflow pages.
  `INSERT INTO t(b, s) VALUES (${allBytesLiteral(40)}, 'all byte values, 40 times');`,
  // One transaction spanning many pages.
  "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600) " +
  "INSERT INTO t(b, s) SELECT randomblob(200 + i % 300), 'row ' || i FROM n; COMMIT;",
  "UPDATE t SET s = 'updated' WHERE id % 7 = 0;",
  "DELETE FROM t WHERE id > 30;",
  // VACUUM rewrites the database; its commit frame makes the file much smaller.
  "VACUUM;",
  "INSERT INTO t(b, s) VALUES (zeroblob(3000), 'after vacuum');",
];

/** A live database after the whole workload, with its WAL read in one piece. */
async function fullWal(pageSize: number) {
  const live = await liveDb(pageSize);
  try {
    for (const sql of workload) await write(live.db, sql);
    const walBytes = await Deno.readFile(live.wal);
    const read = await readFresh(live.wal, null, null);
    return { live, walBytes, read };
  } catch (error) {
    await live.close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------
// Checksum

Deno.test("walChecksum: pairs of 32-bit words, s0 += x0 + s1, s1 += x1 + s0, mod 2^32", () => {
  assert.deepEqual(walChecksum(new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]), false, 0, 0), [1, 3]);
  assert.deepEqual(walChecksum(new Uint8Array([0, 0, 0, 1, 0, 0, 0, 2]), true, 0, 0), [1, 3]);
  // Continues from the seed.
  assert.deepEqual(walChecksum(new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]), false, 10, 20), [
    31,
    53,
  ]);
  // Wraps around at 2^32.
  assert.deepEqual(walChecksum(new Uint8Array(8).fill(0xff), false, 0, 0), [
    0xffffffff,
    0xfffffffe,
  ]);
  // Chaining two halves equals one pass over the whole.
  const bytes = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
  const [a, b] = walChecksum(bytes.subarray(0, 24), false, 5, 6);
  assert.deepEqual(walChecksum(bytes.subarray(24), false, a, b), walChecksum(bytes, false, 5, 6));
  // Unaligned input gives the same result as aligned input.
  const unaligned = new Uint8Array(65).subarray(1);
  unaligned.set(bytes);
  assert.deepEqual(walChecksum(unaligned, false, 0, 0), walChecksum(bytes, false, 0, 0));
  assert.deepEqual(walChecksum(unaligned, true, 0, 0), walChecksum(bytes, true, 0, 0));
  assertWalError(() => walChecksum(new Uint8Array(12), false, 0, 0), /multiple of 8/);
});

// ---------------------------------------------------------------------------------------
// Reading real WAL files

for (const pageSize of [4096, 1024]) {
  Deno.test(`real WAL, page size ${pageSize}: header, frames, commits, salts`, async () => {
    const { live, walBytes, read } = await fullWal(pageSize);
    try {
      const raw = new DataView(walBytes.buffer);
      const header = parseWalHeader(walBytes);
      assert.deepEqual(read.header, header);
      assert.equal(header.pageSize, pageSize);
      assert.equal(header.formatVersion, 3007000);
      assert.equal(
        header.bigEndian,
        false,
        "SQLite writes native order; this host is little-endian",
      );
      assert.equal(header.salt1, raw.getUint32(16));
      assert.equal(header.salt2, raw.getUint32(20));
      assert.equal(header.checkpointSeq, raw.getUint32(12));

      // A fresh WAL written only by committed transactions is valid to its last byte.
      const frameSize = frameSizeOf(pageSize);
      assert.equal((walBytes.byteLength - walHeaderSize) % frameSize, 0);
      assert.equal(read.frameCount, (walBytes.byteLength - walHeaderSize) / frameSize);
      assert.equal(read.commits, workload.length, "one commit frame per transaction");
      assert.deepEqual(read.frames, walBytes.subarray(walHeaderSize));
      assert.equal(read.end.offset, walBytes.byteLength);

      const frames = [...segmentFrames(read.frames, pageSize)];
      assert.equal(frames.length, read.frameCount);
      assert.equal(frames.filter((f) => f.commitSize !== 0).length, workload.length);
      assert.ok(frames.every((f) => f.pgno > 0 && f.page.byteLength === pageSize));
      assert.equal(read.lastCommitSize, frames[frames.length - 1].commitSize);
      for (let i = 0; i < read.frameCount; i++) {
        assert.equal(raw.getUint32(walHeaderSize + i * frameSize + 8), header.salt1);
        assert.equal(raw.getUint32(walHeaderSize + i * frameSize + 12), header.salt2);
      }
      // VACUUM shrank the database: some commit is smaller than an earlier one.
      const commitSizes = frames.filter((f) => f.commitSize !== 0).map((f) => f.commitSize);
      assert.ok(Math.max(...commitSizes) > commitSizes[commitSizes.length - 2]);

      // The end of the read carries the chain: the last frame's stored checksum.
      const last = walHeaderSize + (read.frameCount - 1) * frameSize;
      assert.equal(read.end.checksum1, raw.getUint32(last + 16));
      assert.equal(read.end.checksum2, raw.getUint32(last + 20));

      // Reading again from the end finds nothing new.
      const again = await readFresh(live.wal, header, read.end);
      assert.equal(again.frameCount, 0);
      assert.equal(again.frames.byteLength, 0);
      assert.deepEqual(again.end, read.end);
    } finally {
      await live.close();
    }
  });

  Deno.test(`real WAL, page size ${pageSize}: segments polled after each transaction restore every state`, async () => {
    const live = await liveDb(pageSize);
    try {
      const restored = `${live.dir}/restored`;
      await Deno.copyFile(live.base, restored);
      let header: WalHeader | null = null;
      let position: WalPosition | null = null;
      for (const sql of workload) {
        await write(live.db, sql);
        const read: Extract<WalFileRead, { restarted: false }> = await readFresh(
          live.wal,
          header,
          position,
        );
        const start: WalPosition = position ?? walStartPosition(read.header);
        assert.equal(read.commits, 1, `one transaction: ${sql}`);
        assert.equal(read.frames.byteLength, read.frameCount * frameSizeOf(pageSize));
        assert.equal(read.end.offset, start.offset + read.frames.byteLength);

        const info = segmentInfoOf(read.header, start, read);
        verifySegment(read.frames, info);
        const result = await applyTo(restored, read.frames, info);
        assert.deepEqual(result, {
          frames: read.frameCount,
          commits: 1,
          commitSize: read.lastCommitSize,
        });
        assert.equal((await Deno.stat(restored)).size, read.lastCommitSize * pageSize);
        if (sql.startsWith("CREATE")) {
          assert.equal((await sqlite(restored, "PRAGMA integrity_check")).trim(), "ok");
        } else {
          await assertRestored(restored, await contentHash(live.db));
        }
        header = read.header;
        position = read.end;
      }
    } finally {
      await live.close();
    }
  });

  Deno.test(`real WAL, page size ${pageSize}: chunk sizes do not change the result`, async () => {
    const { live, read } = await fullWal(pageSize);
    try {
      const expected = await contentHash(live.db);
      const info = segmentInfoOf(read.header, walStartPosition(read.header), read);
      const results: Uint8Array[] = [];
      for (
        const [name, chunk, how] of [
          ["whole", read.frames.byteLength, info],
          ["1 byte", 1, info],
          ["7 bytes", 7, info],
          ["frame + 1", frameSizeOf(pageSize) + 1, info],
          ["unverified, 7 bytes", 7, pageSize],
        ] as const
      ) {
        const path = `${live.dir}/restored-${results.length}`;
        await Deno.copyFile(live.base, path);
        const result = await applyTo(path, read.frames, how, chunk);
        assert.equal(result.frames, read.frameCount, name);
        assert.equal(result.commits, workload.length, name);
        assert.equal(result.commitSize, read.lastCommitSize, name);
        results.push(await Deno.readFile(path));
      }
      for (const bytes of results.slice(1)) assert.deepEqual(bytes, results[0]);
      await assertRestored(`${live.dir}/restored-0`, expected);

      // The WAL holds every page written since the base, so an empty file works as a base too.
      const fromEmpty = `${live.dir}/from-empty`;
      await Deno.writeFile(fromEmpty, new Uint8Array(0));
      await applyTo(fromEmpty, read.frames, info, 4096);
      assert.deepEqual(await Deno.readFile(fromEmpty), results[0]);
    } finally {
      await live.close();
    }
  });
}

Deno.test("readWalFile: missing or short file is null; a position needs its header", async () => {
  const dir = await Deno.makeTempDir({ prefix: "walsync-wal-test-" });
  try {
    assert.equal(await readWalFile(`${dir}/nope-wal`, null, null), null);
    await Deno.writeFile(`${dir}/short-wal`, new Uint8Array(31));
    assert.equal(await readWalFile(`${dir}/short-wal`, null, null), null);
    await Deno.writeFile(`${dir}/junk-wal`, new Uint8Array(100).fill(7));
    await assert.rejects(() => readWalFile(`${dir}/junk-wal`, null, null), WalFormatError);
    await assert.rejects(
      () => readWalFile(`${dir}/junk-wal`, null, { offset: 32, checksum1: 0, checksum2: 0 }),
      /position/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readWalFile with a byte bound takes the backlog in pieces that end on commits", async () => {
  const live = await liveDb(1024);
  try {
    // Small transactions, then one of many pages (larger than the bound on its own), then more.
    for (const sql of workload.slice(0, 6)) await write(live.db, sql);
    const whole = await readFresh(live.wal, null, null);
    const frameSize = frameSizeOf(1024);

    let header: WalHeader | null = null;
    let position: WalPosition | null = null;
    const pieces: Uint8Array[] = [];
    let commits = 0;
    let sawMore = false;
    for (let round = 0; round < 100; round++) {
      const piece = await readWalFile(live.wal, header, position, 2 * frameSize);
      assert.ok(piece !== null && !piece.restarted);
      if (piece.frameCount === 0) {
        assert.equal(piece.more, false, "nothing left unread at the end");
        break;
      }
      sawMore ||= piece.more;
      header = piece.header;
      // Every piece ends on a commit frame: restore points stay whole transactions.
      const frames = [...segmentFrames(piece.frames, 1024)];
      assert.notEqual(frames[frames.length - 1].commitSize, 0);
      pieces.push(piece.frames);
      commits += piece.commits;
      position = piece.end;
    }
    assert.ok(pieces.length > 2, `expected several pieces, got ${pieces.length}`);
    assert.ok(sawMore, "a bounded read says when the file goes on");
    assert.equal(commits, whole.commits);
    assert.deepEqual(position, whole.end);
    const joined = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of pieces) (joined.set(p, at), at += p.byteLength);
    assert.deepEqual(joined, whole.frames);
  } finally {
    await live.close();
  }
});

Deno.test("readWalFile with a byte bound: frames of an older WAL left after a restart end the log (nothing more to read)", async () => {
  const live = await liveDb(1024);
  try {
    for (const sql of workload.slice(0, 5)) await write(live.db, sql);
    const long = (await Deno.stat(live.wal)).size;
    // Copy everything back, then one small commit: it restarts the WAL from the top, and the
    // file keeps its length, the rest being frames of the old WAL.
    await sqlite(live.db, "PRAGMA wal_checkpoint(PASSIVE);");
    await write(live.db, "INSERT INTO t(s) VALUES ('after restart');");
    assert.equal((await Deno.stat(live.wal)).size, long);
    const frameSize = frameSizeOf(1024);
    const read = await readWalFile(live.wal, null, null, 4 * frameSize);
    assert.ok(read !== null && !read.restarted);
    assert.equal(read.commits, 1);
    assert.equal(read.more, false);
    const again = await readWalFile(live.wal, read.header, read.end, 4 * frameSize);
    assert.ok(again !== null && !again.restarted);
    assert.equal(again.frameCount, 0);
    assert.equal(again.more, false);
  } finally {
    await live.close();
  }
});

Deno.test("WAL restart after a TRUNCATE checkpoint is reported as a new header", async () => {
  const live = await liveDb(4096);
  try {
    await write(live.db, workload[0]);
    await write(live.db, workload[1]);
    const first = await readFresh(live.wal, null, null);
    assert.equal(first.commits, 2);

    // Our connection is idle (no read transaction), so TRUNCATE succeeds: busy=0.
    assert.equal((await sqlite(live.db, "PRAGMA wal_checkpoint(TRUNCATE)")).trim(), "0|0|0");
    assert.equal((await Deno.stat(live.wal)).size, 0);
    assert.equal(await readWalFile(live.wal, first.header, first.end), null);

    await write(live.db, workload[2]);
    const restarted = await readWalFile(live.wal, first.header, first.end);
    assert.ok(restarted !== null && restarted.restarted);
    assert.notEqual(restarted.header.salt1, first.header.salt1);
    // The checkpoint sequence is a per-connection counter in SQLite: a new writer process
    // that finds the WAL empty starts again from 0 with random salts. Only the salts tell
    // generations apart.
    assert.equal(restarted.header.checkpointSeq, first.header.checkpointSeq);

    // Starting over from the new header reads the new transaction.
    const next = await readFresh(live.wal, restarted.header, null);
    assert.equal(next.commits, 1);
    assert.equal(next.end.offset, (await Deno.stat(live.wal)).size);
  } finally {
    await live.close();
  }
});

Deno.test("WAL restart in place: new frames overwrite the start, old frames after them are ignored", async () => {
  const live = await liveDb(4096);
  try {
    for (const sql of workload.slice(0, 4)) await write(live.db, sql);
    const first = await readFresh(live.wal, null, null);
    const oldSize = (await Deno.stat(live.wal)).size;

    // A PASSIVE checkpoint copies everything back; the next writer then restarts the WAL
    // from its beginning without truncating the file.
    await sqlite(live.db, "PRAGMA wal_checkpoint(PASSIVE)");
    await write(live.db, "INSERT INTO t(s) VALUES ('after restart');");
    assert.equal((await Deno.stat(live.wal)).size, oldSize, "file not truncated");

    const restarted = await readWalFile(live.wal, first.header, first.end);
    assert.ok(restarted !== null && restarted.restarted);
    // The writer restarted the WAL itself: salt-1 is incremented, salt-2 drawn anew.
    assert.equal(restarted.header.salt1, (first.header.salt1 + 1) >>> 0);
    assert.equal(restarted.header.checkpointSeq, first.header.checkpointSeq + 1);

    // The old generation's frames still follow, well formed but with the old salts.
    const fresh = await readFresh(live.wal, null, null);
    assert.equal(fresh.commits, 1);
    assert.ok(fresh.frameCount < first.frameCount);
    assert.ok(fresh.end.offset < oldSize);
  } finally {
    await live.close();
  }
});

// ---------------------------------------------------------------------------------------
// Where valid content ends

Deno.test("readCommittedFrames: trailing garbage and uncommitted frames are not returned", async () => {
  const { live, walBytes, read } = await fullWal(1024);
  try {
    const header = read.header;
    const start = walStartPosition(header);
    const body = walBytes.subarray(walHeaderSize);
    const frameSize = frameSizeOf(1024);
    const random = mulberry32(1);
    const garbage = Uint8Array.from({ length: 3 * frameSize + 5 }, () => random() * 256);

    for (const tail of [garbage, garbage.subarray(0, 10), body.subarray(0, frameSize)]) {
      const result = readCommittedFrames(concat(body, tail), header, start);
      assert.equal(result.frameCount, read.frameCount);
      assert.deepEqual(result.end, read.end);
    }

    // A valid frame that is not a commit: part of a transaction still being written.
    const end: [number, number] = [read.end.checksum1, read.end.checksum2];
    const page = new Uint8Array(1024).fill(0xab);
    const open = makeFrame(header, end, 2, 0, page);
    const withOpen = readCommittedFrames(concat(body, open.frame), header, start);
    assert.equal(withOpen.frameCount, read.frameCount);
    assert.deepEqual(withOpen.end, read.end);

    // Its commit frame completes the transaction: both are returned.
    const commit = makeFrame(header, open.sum, 3, read.lastCommitSize + 1, page);
    const withCommit = readCommittedFrames(concat(body, open.frame, commit.frame), header, start);
    assert.equal(withCommit.frameCount, read.frameCount + 2);
    assert.equal(withCommit.commits, read.commits + 1);
    assert.equal(withCommit.lastCommitSize, read.lastCommitSize + 1);
    assert.deepEqual(withCommit.end, {
      offset: read.end.offset + 2 * frameSize,
      checksum1: commit.sum[0],
      checksum2: commit.sum[1],
    });

    // Reading from a position in the middle continues the same chain.
    const mid = readCommittedFrames(concat(open.frame, commit.frame), header, read.end);
    assert.equal(mid.frameCount, 2);
    assert.deepEqual(mid.end, withCommit.end);

    // SQLite treats a frame with page number 0 as the end of the log, checksum or not.
    const zero = makeFrame(header, end, 0, read.lastCommitSize, page);
    assert.deepEqual(readCommittedFrames(concat(body, zero.frame), header, start).end, read.end);

    // An incomplete last frame is simply not there yet.
    const torn = concat(body, open.frame, commit.frame.subarray(0, frameSize - 1));
    assert.deepEqual(readCommittedFrames(torn, header, start).end, read.end);
  } finally {
    await live.close();
  }
});

Deno.test("readCommittedFrames: a frame with a wrong salt or checksum ends the valid content", async () => {
  const { live, walBytes, read } = await fullWal(1024);
  try {
    const header = read.header;
    const start = walStartPosition(header);
    const frameSize = frameSizeOf(1024);
    const frames = [...segmentFrames(read.frames, 1024)];
    const commitIndexes = frames.flatMap((f, i) => f.commitSize !== 0 ? [i] : []);
    for (const broken of [1, Math.floor(frames.length / 2), frames.length - 1]) {
      // What survives: frames up to the last commit before the broken frame.
      const lastGood = commitIndexes.filter((i) => i < broken).pop();
      const expected = lastGood === undefined ? 0 : lastGood + 1;
      for (const field of [8, 12, 16, 20, 0]) {
        const body = walBytes.slice(walHeaderSize);
        body[broken * frameSize + field + 3] ^= 0x01; // salt-1, salt-2, checksums, pgno
        const result = readCommittedFrames(body, header, start);
        assert.equal(result.frameCount, expected, `frame ${broken}, field ${field}`);
        assert.equal(result.end.offset, walHeaderSize + expected * frameSize);
      }
    }
  } finally {
    await live.close();
  }
});

Deno.test("big-endian checksums (magic 0x377f0683) read and apply the same", async () => {
  const { live, walBytes, read } = await fullWal(1024);
  try {
    // Re-encode the real WAL as a big-endian-checksum WAL: same fields, new checksums.
    const header = read.header;
    const be = walBytes.slice(0, walHeaderSize + read.frames.byteLength);
    const view = new DataView(be.buffer);
    view.setUint32(0, 0x377f0683);
    let sum = walChecksum(be.subarray(0, 24), true, 0, 0);
    view.setUint32(24, sum[0]);
    view.setUint32(28, sum[1]);
    const beHeader = parseWalHeader(be);
    assert.equal(beHeader.bigEndian, true);
    const frameSize = frameSizeOf(1024);
    for (let at = walHeaderSize; at < be.byteLength; at += frameSize) {
      sum = walChecksum(be.subarray(at, at + 8), true, sum[0], sum[1]);
      sum = walChecksum(be.subarray(at + walFrameHeaderSize, at + frameSize), true, sum[0], sum[1]);
      view.setUint32(at + 16, sum[0]);
      view.setUint32(at + 20, sum[1]);
    }
    // Read with the wrong byte order, nothing is valid; with the right one, everything.
    assert.equal(
      readCommittedFrames(be.subarray(walHeaderSize), header, walStartPosition(header)).frameCount,
      0,
    );
    const beRead = readCommittedFrames(
      be.subarray(walHeaderSize),
      beHeader,
      walStartPosition(beHeader),
    );
    assert.equal(beRead.frameCount, read.frameCount);
    const info = segmentInfoOf(beHeader, walStartPosition(beHeader), beRead);
    verifySegment(beRead.frames, info);
    const restored = `${live.dir}/restored`;
    await Deno.copyFile(live.base, restored);
    await applyTo(restored, beRead.frames, info, 1000);
    await assertRestored(restored, await contentHash(live.db));
  } finally {
    await live.close();
  }
});

// ---------------------------------------------------------------------------------------
// Header validation

Deno.test("parseWalHeader rejects bad magic, version, page size and checksum", async () => {
  const { live, walBytes } = await fullWal(1024);
  try {
    const good = walBytes.slice(0, walHeaderSize);
    parseWalHeader(good);
    /** Sets a header field and, unless told otherwise, re-seals the header checksum. */
    const withField = (offset: number, value: number, reseal = true): Uint8Array => {
      const bytes = good.slice();
      const view = new DataView(bytes.buffer);
      view.setUint32(offset, value);
      if (reseal) {
        const bigEndian = view.getUint32(0) === 0x377f0683;
        const [c1, c2] = walChecksum(bytes.subarray(0, 24), bigEndian, 0, 0);
        view.setUint32(24, c1);
        view.setUint32(28, c2);
      }
      return bytes;
    };
    assertWalError(() => parseWalHeader(good.subarray(0, 31)), /31 bytes/);
    assertWalError(() => parseWalHeader(withField(0, 0x377f0684)), /magic/);
    assertWalError(() => parseWalHeader(withField(4, 3007001)), /version/);
    for (const size of [0, 256, 1000, 131072, 4095]) {
      assertWalError(() => parseWalHeader(withField(8, size)), /page size/);
    }
    assert.equal(parseWalHeader(withField(8, 65536)).pageSize, 65536);
    assert.equal(parseWalHeader(withField(8, 1)).pageSize, 65536);
    assert.equal(parseWalHeader(withField(8, 512)).pageSize, 512);
    assertWalError(() => parseWalHeader(withField(16, 12345, false)), /checksum/);
    assertWalError(() => parseWalHeader(withField(28, 1, false)), /checksum/);
  } finally {
    await live.close();
  }
});

// ---------------------------------------------------------------------------------------
// Segment verification

Deno.test("verifySegment accepts real segments and rejects every kind of damage", async () => {
  const { live, read } = await fullWal(1024);
  try {
    const header = read.header;
    const pageSize = 1024;
    const frameSize = frameSizeOf(pageSize);
    const seg = read.frames;
    const info = segmentInfoOf(header, walStartPosition(header), read);
    verifySegment(seg, info);

    const flip = (at: number): Uint8Array => {
      const bytes = seg.slice();
      bytes[at] ^= 0x40;
      return bytes;
    };
    const mid = Math.floor(info.frameCount / 2) * frameSize;
    assertWalError(() => verifySegment(flip(mid + walFrameHeaderSize + 100), info), /checksum/);
    assertWalError(() => verifySegment(flip(mid + 3), info), /checksum/); // pgno
    assertWalError(() => verifySegment(flip(mid + 5), info), /checksum/); // commit size
    assertWalError(() => verifySegment(flip(mid + 9), info), /salts/);
    assertWalError(() => verifySegment(flip(mid + 17), info), /checksum/);
    assertWalError(() => verifySegment(flip(mid + 22), info), /checksum/);
    assertWalError(() => verifySegment(seg.subarray(0, seg.byteLength - 1), info), /multiple/);
    assertWalError(
      () => verifySegment(seg.subarray(0, seg.byteLength - frameSize), info),
      /frames, expected/,
    );
    assertWalError(() => verifySegment(new Uint8Array(0), info), /empty/);
    const swapped = seg.slice();
    swapped.set(seg.subarray(frameSize, 2 * frameSize), 0);
    swapped.set(seg.subarray(0, frameSize), frameSize);
    assertWalError(() => verifySegment(swapped, info), /frame 0 checksum/);
    assertWalError(
      () => verifySegment(seg, { ...info, frameCount: info.frameCount + 1 }),
      /frames/,
    );
    assertWalError(() => verifySegment(seg, { ...info, salt2: info.salt2 ^ 1 }), /salts/);
    assertWalError(() => verifySegment(seg, { ...info, checksumStart: [1, 2] }), /checksum/);
    assertWalError(() => verifySegment(seg, { ...info, checksumEnd: [1, 2] }), /ends at/);
    assertWalError(() => verifySegment(seg, { ...info, commits: info.commits + 1 }), /commits/);
    assertWalError(() => verifySegment(seg, { ...info, commitSize: 1 }), /pages/);
    assertWalError(() => verifySegment(seg, { ...info, pageSize: 4096 }), /multiple/);
    assertWalError(() => verifySegment(seg, { ...info, pageSize: 1000 }), /page size/);

    // A chain that is intact but ends in a non-commit frame, or carries page number 0.
    const end: [number, number] = [read.end.checksum1, read.end.checksum2];
    const open = makeFrame(header, end, 2, 0, new Uint8Array(pageSize));
    const openInfo: SegmentInfo = {
      ...info,
      checksumStart: end,
      checksumEnd: open.sum,
      frameCount: 1,
      commits: 0,
      commitSize: 0,
    };
    assertWalError(() => verifySegment(open.frame, openInfo), /not a commit/);
    const zero = makeFrame(header, end, 0, 5, new Uint8Array(pageSize));
    assertWalError(
      () =>
        verifySegment(zero.frame, {
          ...openInfo,
          checksumEnd: zero.sum,
          commits: 1,
          commitSize: 5,
        }),
      /page number 0/,
    );
  } finally {
    await live.close();
  }
});

// ---------------------------------------------------------------------------------------
// Applier errors

Deno.test("createFrameApplier rejects partial frames, missing commits and damaged frames", async () => {
  const { live, read } = await fullWal(1024);
  try {
    const path = `${live.dir}/scratch`;
    const seg = read.frames;
    const frameSize = frameSizeOf(1024);
    const info = segmentInfoOf(read.header, walStartPosition(read.header), read);
    await assertWalRejects(
      () => applyTo(path, seg.subarray(0, seg.byteLength - 3), 1024, 500),
      /partial/,
    );
    await assertWalRejects(() => applyTo(path, new Uint8Array(0), 1024), /empty/);
    const open = makeFrame(
      read.header,
      [read.end.checksum1, read.end.checksum2],
      2,
      0,
      new Uint8Array(1024),
    );
    await assertWalRejects(() => applyTo(path, concat(seg, open.frame), 1024, 333), /not a commit/);
    // With a SegmentInfo, damage is caught before the damaged frame is written.
    const damaged = seg.slice();
    damaged[5 * frameSize + 600] ^= 1;
    await assertWalRejects(() => applyTo(path, damaged, info, 777), /frame 5 checksum/);
    await assertWalRejects(() => applyTo(path, seg, { ...info, checksumEnd: [0, 0] }), /ends at/);
    await assertWalRejects(() => applyTo(path, seg, { ...info, frameCount: 3 }), /more than/);
    // Page number 0 would be written before the file's start.
    const zero = makeFrame(
      read.header,
      [read.end.checksum1, read.end.checksum2],
      0,
      9,
      new Uint8Array(1024),
    );
    const zeroInfo: SegmentInfo = {
      ...info,
      checksumStart: [read.end.checksum1, read.end.checksum2],
      checksumEnd: zero.sum,
      frameCount: 1,
      commits: 1,
      commitSize: 9,
    };
    await assertWalRejects(() => applyTo(path, zero.frame, 1024), /page number 0/);
    await assertWalRejects(() => applyTo(path, zero.frame, zeroInfo), /page number 0/);
    assert.throws(() => createFrameApplier(null as unknown as Deno.FsFile, 3000), WalFormatError);
  } finally {
    await live.close();
  }
});

// ---------------------------------------------------------------------------------------
// Fuzz

Deno.test("fuzz: random, truncated and bit-flipped input only ever throws WalFormatError", async () => {
  const live = await liveDb(1024);
  const started = Date.now();
  try {
    for (const sql of workload.slice(0, 3)) await write(live.db, sql);
    await write(live.db, "UPDATE t SET s = 'again' WHERE id = 1;");
    const real = await Deno.readFile(live.wal);
    const header = parseWalHeader(real);
    const start = walStartPosition(header);
    const realRead = readCommittedFrames(real.subarray(walHeaderSize), header, start);
    const realInfo = segmentInfoOf(header, start, realRead);
    const frameSize = frameSizeOf(header.pageSize);
    const scratchPath = `${live.dir}/scratch`;
    const scratch = await Deno.open(scratchPath, { read: true, write: true, create: true });

    const random = mulberry32(0x5eed);
    const int = (n: number): number => Math.floor(random() * n);
    const counts = { succeeded: 0, rejected: 0 };
    /** Runs `fn`; only success or a WalFormatError is acceptable. */
    const attempt = async (what: string, iteration: number, fn: () => unknown): Promise<void> => {
      try {
        await fn();
        counts.succeeded++;
      } catch (error) {
        if (!(error instanceof WalFormatError)) {
          throw new Error(`iteration ${iteration}, ${what}: ${error}`, { cause: error });
        }
        counts.rejected++;
      }
    };
    try {
      for (let i = 0; i < 2000; i++) {
        let input: Uint8Array;
        switch (i % 3) {
          case 0:
            input = Uint8Array.from({ length: int(4 * frameSize) }, () => int(256));
            break;
          case 1:
            input = real.slice(0, int(real.byteLength + 1));
            break;
          default: {
            input = real.slice();
            for (let flips = 1 + int(4); flips > 0; flips--) {
              input[int(input.length)] ^= 1 << int(8);
            }
          }
        }
        const body = input.subarray(Math.min(walHeaderSize, input.byteLength));
        const randomInfo: SegmentInfo = {
          ...realInfo,
          pageSize: [512, 1000, 1024, 4096, 0, 65536][int(6)],
          frameCount: int(30),
          commits: int(5),
          checksumStart: [int(2 ** 32), int(2 ** 32)],
        };

        await attempt("parseWalHeader", i, () => parseWalHeader(input));
        await attempt("readCommittedFrames", i, () => {
          let parsed = header;
          try {
            parsed = parseWalHeader(input);
          } catch { /* keep the real header */ }
          const result = readCommittedFrames(body, parsed, walStartPosition(parsed));
          // Whatever is returned is a prefix of the input and verifies as a segment.
          assert.deepEqual(result.frames, body.subarray(0, result.frameCount * frameSize));
          if (result.frameCount > 0) {
            verifySegment(result.frames, segmentInfoOf(parsed, walStartPosition(parsed), result));
          }
        });
        await attempt("verifySegment", i, () => verifySegment(body, realInfo));
        await attempt("verifySegment, random info", i, () => verifySegment(body, randomInfo));
        for (const how of [realInfo, header.pageSize, randomInfo]) {
          await attempt(
            `applier ${typeof how === "number" ? "unverified" : "verified"}`,
            i,
            async () => {
              await scratch.truncate(0);
              const applier = createFrameApplier(scratch, how);
              for (let at = 0; at < body.byteLength;) {
                const size = 1 + int(2 * frameSize);
                await applier.write(body.subarray(at, at + size));
                at += size;
              }
              await applier.finish();
            },
          );
        }
      }
    } finally {
      scratch.close();
    }
    // Both outcomes occurred: the fuzz exercised the accepting paths too.
    assert.ok(counts.succeeded > 1000, `succeeded ${counts.succeeded}`);
    assert.ok(counts.rejected > 1000, `rejected ${counts.rejected}`);
    assert.ok(Date.now() - started < 120_000, "fuzz took too long");
  } finally {
    await live.close();
  }
});
