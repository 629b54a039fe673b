/**
 * Turns the WAL's new complete transactions into sealed segments (compressed, with their
 * metadata, in order) and moves the lineage past them. Nothing is uploaded here.
 *
 * The `-wal` file is read with its own descriptor, which is safe while this process holds
 * SQLite connections (docs/sqlite-facts.md, fact 1).
 * @module
 */
import { meta, walSegmentKey } from "../format/layout.ts";
import { sha256Hex } from "../support/hash.ts";
import { encodeSegment, segmentMetadata } from "../history/segment.ts";
import {
  indexDescribes,
  readWalFile,
  segmentInfoOf,
  type WalFileRead,
  walFrameHeaderSize,
  type WalHeader,
  walHeaderSize,
  type WalIndexHeader,
  type WalReadBuffer,
  walStartPosition,
} from "../format/wal.ts";
import { type SpilledTransaction, spillTransaction } from "./spill.ts";
import type { Lineage } from "./lineage.ts";
import { withProcessLock } from "./locks.ts";
import { type FileStamp, stampOf } from "./stamp.ts";
import type { SealedSegment } from "./uploader.ts";
import type { WalIndex } from "../format/wal_index.ts";
import { sameBytes } from "../support/bytes.ts";

/** A segment holds about this many bytes of WAL at most (a longer backlog is cut into several). */
export const segmentBytes = 16 * 1024 * 1024;
/** Pieces of {@link segmentBytes} read per call, so one database cannot hold the others up. */
const piecesPerCall = 8;

/**
 * One buffer for every WAL read of this process (a read is consumed before the next one
 * starts): reading a backlog in 16 MiB pieces would otherwise leave a fresh 16 MiB buffer
 * per piece for the garbage collector, and the process's memory would follow its backlog.
 */
const walReadBuffer: WalReadBuffer = { bytes: new Uint8Array(0), limit: 2 * segmentBytes };
/** The {@link withProcessLock} key that guards {@link walReadBuffer} (not a path). */
const walReadBufferKey = "\0wal-read-buffer";

/** Runs `task` while it alone uses this process's WAL read buffer. */
export function withWalReadBuffer<T>(task: (buffer: WalReadBuffer) => Promise<T>): Promise<T> {
  return withProcessLock(walReadBufferKey, () => task(walReadBuffer));
}

/** A segment as sealed by the collector (the watcher adds when its commits were seen). */
export type CollectedSegment = Omit<SealedSegment, "seenAt">;

/** What one collect found. */
export type CollectOutcome =
  /** The WAL's history cannot be continued: a new generation is needed, for `reason`. */
  | { newGeneration: string }
  | {
    newGeneration?: undefined;
    /** Frames sealed into segments. */
    frames: number;
    /** Stopped before the end of the WAL: collect again soon. */
    behind: boolean;
  };

/** The default reason for a new generation when the read did not give a better one. */
const walResetReason = "the WAL was reset or its page size changed";

/**
 * Reads the WAL from the lineage's position; follows a restart when it is safe to. `stamp`
 * is the `-wal` file as just seen by the caller.
 */
async function readNew(
  l: Lineage,
  walPath: string,
  stamp: FileStamp | null,
  buffer: WalReadBuffer,
  committed: WalIndexHeader | undefined,
): Promise<WalFileRead | { newGeneration: string } | null> {
  // `PRAGMA wal_checkpoint(TRUNCATE)` empties the WAL in place (same inode) once every frame
  // is backfilled; like any restart it can only happen after we shipped them (module
  // comment of connections.ts). A WAL that is gone, or a different file, is something else.
  const inode = stamp?.ino ?? null;
  if (l.header !== null && inode === null) {
    return { newGeneration: "the WAL file disappeared while watched" };
  }
  if (l.walInode !== null && inode !== null && inode !== l.walInode) {
    return { newGeneration: "the WAL file was replaced while watched" };
  }
  let read = await readWalFile(
    walPath,
    l.header,
    l.position,
    segmentBytes,
    buffer,
    committed,
    false,
  );
  for (let i = 0; i < 3 && read?.restarted; i++) {
    if (read.header.pageSize !== l.pageSize) return { newGeneration: walResetReason };
    // Every frame of the old WAL was shipped before it could restart (module comment).
    l.header = read.header;
    l.position = walStartPosition(read.header);
    read = await readWalFile(walPath, l.header, l.position, segmentBytes, buffer, committed, false);
  }
  // Shorter than a header: truncated (checked above that it is the same file), or just
  // created; the next read sees the new header.
  if (read === null) return null;
  if (read.restarted) return { newGeneration: walResetReason };
  if (l.header === null) {
    if (read.header.pageSize !== l.pageSize) return { newGeneration: walResetReason };
    l.header = read.header;
    l.position = walStartPosition(read.header);
  }
  l.walInode ??= inode;
  return read;
}

/** Seals frames read at the lineage's position into a segment and moves the lineage past them. */
function seal(
  l: Lineage,
  name: string,
  read: Extract<WalFileRead, { restarted: false }>,
): CollectedSegment {
  const start = l.position!;
  const txidFirst = l.txid + 1;
  const txidLast = l.txid + read.commits;
  const key = walSegmentKey(name, l.generation, txidFirst, txidLast);
  // Compressed right away: a sealed segment waits in memory at a fraction of its size.
  const encoded = encodeSegment(read.frames);
  const metadata = segmentMetadata({
    ...segmentInfoOf(read.header, start, read),
    txidFirst,
    txidLast,
    prevSha256: l.prevSha256,
    created: new Date().toISOString(),
    db: name,
    generation: l.generation,
  });
  Object.assign(metadata, encoded.metadata);
  const body = encoded.body;
  l.position = read.end;
  l.txid = txidLast;
  l.prevSha256 = sha256Hex(body);
  return { key, body, metadata, txidLast };
}

let spillDir: Promise<string> | null = null;

/**
 * A directory of this process for spill files (each is removed once uploaded). The directory
 * goes when the process exits: a watcher restarted every day would otherwise leave one behind
 * in the temporary directory per run.
 */
function spillDirectory(): Promise<string> {
  spillDir ??= Deno.makeTempDir({ prefix: "walsync-spill-" }).then((dir) => {
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    });
    return dir;
  });
  return spillDir;
}

/** Where the committed frames of the WAL with `header` end: what the wal-index publishes. */
async function committedEnd(
  walPath: string,
  header: WalHeader,
  committed: WalIndexHeader | undefined,
): Promise<number> {
  if (committed === undefined) return (await Deno.stat(walPath)).size;
  if (!indexDescribes(committed, header)) return 0;
  return walHeaderSize + committed.mxFrame * (walFrameHeaderSize + header.pageSize);
}

/** Seals a spilled transaction into a segment and moves the lineage past it. */
function sealSpilled(
  l: Lineage,
  name: string,
  header: WalHeader,
  spilled: SpilledTransaction,
): CollectedSegment {
  const start = l.position!;
  const txid = l.txid + 1;
  const metadata = segmentMetadata({
    pageSize: header.pageSize,
    salt1: header.salt1,
    salt2: header.salt2,
    bigEndian: header.bigEndian,
    checksumStart: [start.checksum1, start.checksum2],
    checksumEnd: [spilled.end.checksum1, spilled.end.checksum2],
    frameCount: spilled.frameCount,
    commits: 1,
    commitSize: spilled.commitSize,
    txidFirst: txid,
    txidLast: txid,
    prevSha256: l.prevSha256,
    created: new Date().toISOString(),
    db: name,
    generation: l.generation,
  });
  metadata[meta.encoding] = "zstd";
  metadata[meta.decodedSize] = String(spilled.decodedSize);
  l.position = spilled.end;
  l.txid = txid;
  l.prevSha256 = spilled.sha256;
  return {
    key: walSegmentKey(name, l.generation, txid, txid),
    body: { path: spilled.path, sha256: spilled.sha256 },
    metadata,
    txidLast: txid,
  };
}

/**
 * Reads the WAL at `walPath` past the lineage's position into sealed segments, handing each
 * to `emit` as soon as it is sealed (the lineage has then moved past it), a bounded number
 * per call. The caller holds the WAL read buffer. With `committed` (the wal-index header
 * read before this call) nothing past its published max frame is read.
 * @example
 * const outcome = await withWalReadBuffer((buffer) =>
 *   collectSegments(lineage, "app.db-wal", "app.db", buffer, (s) => uploader.push(s)));
 */
export async function collectSegments(
  l: Lineage,
  walPath: string,
  name: string,
  buffer: WalReadBuffer,
  emit: (segment: CollectedSegment) => void,
  committed?: WalIndexHeader,
): Promise<CollectOutcome> {
  let frames = 0;
  for (let piece = 0; piece < piecesPerCall; piece++) {
    const stamp = await stampOf(walPath);
    const read = await readNew(l, walPath, stamp, buffer, committed);
    if (read !== null && "newGeneration" in read) return { newGeneration: read.newGeneration };
    if (read !== null && !read.restarted && read.frameCount === 0 && read.more) {
      // One transaction larger than a segment's bound: streamed, never whole in memory.
      const spilled = await spillTransaction(
        walPath,
        read.header,
        l.position!,
        await committedEnd(walPath, read.header, committed),
        await spillDirectory(),
      );
      if (spilled === null) return { frames, behind: false };
      emit(sealSpilled(l, name, read.header, spilled));
      frames += spilled.frameCount;
      continue;
    }
    if (read === null || read.restarted || read.frameCount === 0) {
      return { frames, behind: false };
    }
    emit(seal(l, name, read));
    frames += read.frameCount;
    // Read to the end of what was committed (or of the file as it was).
    if (!read.more) return { frames, behind: false };
  }
  return { frames, behind: true };
}

/** The collector of one database's WAL, with what it remembers between reads. */
export interface Collector {
  /** The last collect stopped before the end of the WAL (or failed): collect again soon. */
  readonly behind: boolean;
  /**
   * Whether SQLite has published nothing since the WAL was last read to its end: the
   * wal-index header is the same (its change counter moves with every commit, its max frame
   * and salts with every restart). Never from the `-wal` file's size or mtime, which an
   * in-place rewrite after a restart can leave as they were.
   */
  unchanged(index: WalIndex): boolean;
  /** Collects new segments up to what `index` publishes (see {@link collectSegments}). */
  collect(
    l: Lineage,
    index: WalIndex,
    emit: (segment: CollectedSegment) => void,
  ): Promise<CollectOutcome>;
  /** Forgets the last read (a new generation reads from its own start). */
  forget(): void;
  /** Not behind any more (the lineage ended). */
  clearBehind(): void;
}

/** Creates the collector of the WAL at `walPath`, for database `name` in the bucket. */
export function createCollector(walPath: string, name: string): Collector {
  /** The wal-index header the WAL was last read to the end of; while it is the same there is nothing to read. */
  let lastSeen: Uint8Array | null = null;
  let behind = false;
  return {
    get behind() {
      return behind;
    },
    unchanged(index) {
      const now = index.read();
      return now !== null && lastSeen !== null && sameBytes(now.bytes, lastSeen);
    },
    async collect(l, index, emit) {
      behind = true;
      // Read first: every frame up to the max frame it publishes is in the file by then.
      const committed = index.read();
      if (committed === null) {
        // A writer kept the header changing, or there is none yet: nothing is known to be
        // committed; the next sync looks again.
        behind = false;
        lastSeen = null;
        return { frames: 0, behind: false };
      }
      // The frames read point into the shared buffer until they are compressed in seal().
      const outcome = await withWalReadBuffer((buffer) =>
        collectSegments(l, walPath, name, buffer, emit, committed)
      );
      if (outcome.newGeneration === undefined) {
        behind = outcome.behind;
        lastSeen = outcome.behind ? null : committed.bytes;
      }
      return outcome;
    },
    forget() {
      lastSeen = null;
    },
    clearBehind() {
      behind = false;
    },
  };
}
