/**
 * SQLite write-ahead log: parsing, the frame checksum chain, and applying frames to a
 * database file.
 *
 * Written from https://www.sqlite.org/fileformat2.html ("The Write-Ahead Log" and
 * "Checksum Algorithm"). A WAL file is a 32-byte header followed by frames, each a 24-byte
 * frame header and one page. Every multi-byte field is a big-endian uint32; only the words
 * fed to the checksum are read in the byte order the header's magic names. Frame checksums
 * are cumulative: each continues from the previous frame's (the first from the header's),
 * which is why a {@link WalPosition} carries a checksum and not only an offset.
 *
 * Walsync's "segment" is a run of raw frames, exactly as in the WAL, ending in a commit
 * frame; {@link SegmentInfo} is what it takes to re-verify one on its own.
 * @module
 */

/** Size of the WAL file header. */
export const walHeaderSize = 32;
/** Size of the header in front of every page in the WAL. */
export const walFrameHeaderSize = 24;

/** The largest page number SQLite can use (its hard limit on the page count). */
export const maxPageNumber = 0xfffffffe;

/** Magic of a WAL whose checksums read words little-endian. */
const magicLittleEndian = 0x377f0682;
/** Magic of a WAL whose checksums read words big-endian. */
const magicBigEndian = 0x377f0683;
/** The only WAL format version SQLite has ever written. */
const walFormatVersion = 3007000;

/** The bytes are not a valid WAL, WAL frame or segment; the message names the problem. */
export class WalFormatError extends Error {
  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "WalFormatError";
  }
}

/** The fields of a WAL file header. */
export interface WalHeader {
  /** Checksums read 32-bit words big-endian (magic 0x377f0683) rather than little-endian. */
  bigEndian: boolean;
  /** Always 3007000. */
  formatVersion: number;
  /** Database page size in bytes. */
  pageSize: number;
  /** Checkpoint sequence number; SQLite increments it each time the WAL restarts. */
  checkpointSeq: number;
  /** Salt-1; SQLite increments it each time the WAL restarts. */
  salt1: number;
  /** Salt-2; SQLite draws a new random value each time the WAL restarts. */
  salt2: number;
  /** First half of the header checksum, which seeds the first frame's. */
  checksum1: number;
  /** Second half of the header checksum. */
  checksum2: number;
}

/** A place in a WAL file: the offset of the next frame and the checksum chain up to it. */
export interface WalPosition {
  /** Byte offset in the WAL file of the next frame (32 at the start). */
  offset: number;
  /** First half of the cumulative checksum of everything before `offset`. */
  checksum1: number;
  /** Second half of the cumulative checksum of everything before `offset`. */
  checksum2: number;
}

/** One frame, decoded. */
export interface WalFrame {
  /** Page number, 1-based. */
  pgno: number;
  /** Database size in pages after this commit, or 0 when this is not a commit frame. */
  commitSize: number;
  /** The page content (a view into the frame bytes, not a copy). */
  page: Uint8Array;
}

/** What {@link readCommittedFrames} found: the complete transactions after a position. */
export interface CommittedFrames {
  /** Raw frames (headers and pages) of complete transactions only, as in the WAL. */
  frames: Uint8Array;
  /** Number of frames in `frames`. */
  frameCount: number;
  /** Number of commit frames in `frames`. */
  commits: number;
  /** Position after the last commit frame (the start position when there was none). */
  end: WalPosition;
  /** Database size in pages after the last commit, or 0 when there was no commit. */
  lastCommitSize: number;
  /**
   * Bytes of valid frames found, committed or not: where the walk stopped. Less than the
   * input minus one frame means it met the end of the log, not the end of the input.
   */
  validBytes: number;
}

/**
 * What {@link readWalFile} found: either the WAL was restarted since `header` (new salts
 * or checkpoint sequence; frames were not read), or the complete transactions after the
 * position.
 */
export type WalFileRead =
  | { restarted: true; header: WalHeader }
  | ({
    restarted: false;
    header: WalHeader;
    /** Bytes past the byte bound were left unread: read again from `end` for the rest. */
    more: boolean;
  } & CommittedFrames);

/** What it takes to verify a segment on its own. */
export interface SegmentInfo {
  /** Database page size in bytes. */
  pageSize: number;
  /** Salt-1 of the WAL the frames came from. */
  salt1: number;
  /** Salt-2 of the WAL the frames came from. */
  salt2: number;
  /** Byte order of the checksum words. */
  bigEndian: boolean;
  /** Cumulative checksum before the first frame. */
  checksumStart: [number, number];
  /** Cumulative checksum after the last frame. */
  checksumEnd: [number, number];
  /** Number of frames. */
  frameCount: number;
  /** Number of commit frames. */
  commits: number;
  /** Database size in pages after the last commit. */
  commitSize: number;
}

/** Totals reported by a {@link FrameApplier} once all frames are applied. */
export interface ApplyResult {
  /** Frames written. */
  frames: number;
  /** Commit frames seen. */
  commits: number;
  /** Database size in pages after the last commit (the file's size is this × page size). */
  commitSize: number;
}

/** Writes segment bytes, fed in chunks of any size, into a database file. */
export interface FrameApplier {
  /** Applies every frame completed by this chunk; await each call before the next. */
  write(chunk: Uint8Array): Promise<void>;
  /** Checks the segment ended cleanly (and, with a SegmentInfo, matched it) and reports totals. */
  finish(): Promise<ApplyResult>;
}

/** Whether this machine stores uint32 little-endian, which allows the fast checksum path. */
const hostLittleEndian: boolean = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

function pairHex(pair: readonly [number, number]): string {
  return `${hex(pair[0])}/${hex(pair[1])}`;
}

/** Throws unless `pageSize` is a power of two from 512 to 65536. */
function assertPageSize(pageSize: number): void {
  if (
    !Number.isInteger(pageSize) || pageSize < 512 || pageSize > 65536 ||
    (pageSize & (pageSize - 1)) !== 0
  ) {
    throw new WalFormatError(`invalid page size ${pageSize}: must be a power of two, 512 to 65536`);
  }
}

/**
 * Continues the checksum over `bytes[start, end)` (a multiple of 8 long). SQLite's
 * algorithm: for each pair of words x0, x1: s0 += x0 + s1; s1 += x1 + s0, modulo 2^32.
 */
function checksumRange(
  bytes: Uint8Array,
  start: number,
  end: number,
  bigEndian: boolean,
  s0: number,
  s1: number,
): [number, number] {
  s0 >>>= 0;
  s1 >>>= 0;
  const at = bytes.byteOffset + start;
  // Reading words through a Uint32Array is several times faster than a DataView, but it
  // needs an aligned start and words in host order; everything else takes the DataView path.
  if (bigEndian !== hostLittleEndian && at % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, at, (end - start) / 4);
    for (let i = 0; i < words.length; i += 2) {
      s0 = (s0 + words[i] + s1) >>> 0;
      s1 = (s1 + words[i + 1] + s0) >>> 0;
    }
    return [s0, s1];
  }
  const view = viewOf(bytes);
  const littleEndian = !bigEndian;
  for (let i = start; i < end; i += 8) {
    s0 = (s0 + view.getUint32(i, littleEndian) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, littleEndian) + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * SQLite's WAL checksum of `bytes`, continuing from `s0`, `s1` (0, 0 for the WAL header).
 * Words are 32-bit in the given byte order, summed in pairs with uint32 wraparound; the
 * length must be a multiple of 8.
 */
export function walChecksum(
  bytes: Uint8Array,
  bigEndian: boolean,
  s0: number,
  s1: number,
): [number, number] {
  if (bytes.byteLength % 8 !== 0) {
    throw new WalFormatError(`checksum input is ${bytes.byteLength} bytes, not a multiple of 8`);
  }
  return checksumRange(bytes, 0, bytes.byteLength, bigEndian, s0, s1);
}

/** The checksum chain of one frame: its first 8 header bytes, then its page. */
function frameChecksum(
  bytes: Uint8Array,
  offset: number,
  frameSize: number,
  bigEndian: boolean,
  s0: number,
  s1: number,
): [number, number] {
  const [h0, h1] = checksumRange(bytes, offset, offset + 8, bigEndian, s0, s1);
  return checksumRange(bytes, offset + walFrameHeaderSize, offset + frameSize, bigEndian, h0, h1);
}

/** Parses and validates a WAL header (the first 32 bytes of `bytes`). */
export function parseWalHeader(bytes: Uint8Array): WalHeader {
  if (bytes.byteLength < walHeaderSize) {
    throw new WalFormatError(`WAL header is ${bytes.byteLength} bytes, expected ${walHeaderSize}`);
  }
  const view = viewOf(bytes);
  const magic = view.getUint32(0);
  if (magic !== magicLittleEndian && magic !== magicBigEndian) {
    throw new WalFormatError(`not a WAL file: magic ${hex(magic)}`);
  }
  const bigEndian = magic === magicBigEndian;
  const formatVersion = view.getUint32(4);
  if (formatVersion !== walFormatVersion) {
    throw new WalFormatError(`unsupported WAL format version ${formatVersion}`);
  }
  const rawPageSize = view.getUint32(8);
  // SQLite stores 65536 as is here, but 1 means 65536 in the database header; accept both.
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  assertPageSize(pageSize);
  const stored: [number, number] = [view.getUint32(24), view.getUint32(28)];
  const computed = checksumRange(bytes, 0, 24, bigEndian, 0, 0);
  if (computed[0] !== stored[0] || computed[1] !== stored[1]) {
    throw new WalFormatError(
      `WAL header checksum mismatch: stored ${pairHex(stored)}, computed ${pairHex(computed)}`,
    );
  }
  return {
    bigEndian,
    formatVersion,
    pageSize,
    checkpointSeq: view.getUint32(12),
    salt1: view.getUint32(16),
    salt2: view.getUint32(20),
    checksum1: stored[0],
    checksum2: stored[1],
  };
}

/** Size of one copy of the wal-index header at the start of the `-shm` file. */
export const walIndexHeaderSize = 48;

/**
 * What SQLite has published as committed, from the wal-index header in the `-shm` file
 * (SQLite's "walformat" documentation: two copies of a 48-byte header at offset 0, in the
 * host's byte order, the salts as raw bytes copied from the WAL header). Readers trust it
 * over the `-wal` file: frames past `mxFrame` belong to a transaction never published.
 */
export interface WalIndexHeader {
  /** Incremented by each transaction a writer commits. */
  change: number;
  /** Database page size in bytes. */
  pageSize: number;
  /** Number of the last frame of the last committed transaction (0: none in this WAL). */
  mxFrame: number;
  /** Database size in pages after that transaction. */
  pageCount: number;
  /** Checksum chain after frame `mxFrame`. */
  frameChecksum: [number, number];
  /** Salts of the WAL the frames belong to (as {@link WalHeader} reads them). */
  salt1: number;
  /** Second salt. */
  salt2: number;
  /** The 48 bytes, to tell two headers apart. */
  bytes: Uint8Array;
}

/** The wal-index format version SQLite writes. */
const walIndexVersion = 3007000;

/**
 * Parses the wal-index header from the first {@link walIndexHeaderSize} × 2 bytes of a
 * `-shm` file. Returns null when the two copies differ, the header is not initialised, or
 * its checksum does not match: a writer is updating it (read again), or there is none yet.
 */
export function parseWalIndexHeader(bytes: Uint8Array): WalIndexHeader | null {
  if (bytes.byteLength < 2 * walIndexHeaderSize) return null;
  const first = bytes.subarray(0, walIndexHeaderSize);
  const second = bytes.subarray(walIndexHeaderSize, 2 * walIndexHeaderSize);
  for (let i = 0; i < walIndexHeaderSize; i++) if (first[i] !== second[i]) return null;
  const view = viewOf(first);
  const host = hostLittleEndian;
  if (view.getUint32(0, host) !== walIndexVersion || first[12] !== 1) return null;
  // The checksum covers the first 40 bytes, read as words in the host's byte order.
  const [c0, c1] = checksumRange(first, 0, 40, !host, 0, 0);
  if (c0 !== view.getUint32(40, host) || c1 !== view.getUint32(44, host)) return null;
  const rawPageSize = view.getUint16(14, host);
  return {
    change: view.getUint32(8, host),
    pageSize: rawPageSize === 1 ? 65536 : rawPageSize,
    mxFrame: view.getUint32(16, host),
    pageCount: view.getUint32(20, host),
    frameChecksum: [view.getUint32(24, host), view.getUint32(28, host)],
    salt1: view.getUint32(32),
    salt2: view.getUint32(36),
    bytes: first.slice(),
  };
}

/** Whether the WAL with `header` is the one the wal-index header describes. */
export function indexDescribes(index: WalIndexHeader, header: WalHeader): boolean {
  return index.salt1 === header.salt1 && index.salt2 === header.salt2 &&
    index.pageSize === header.pageSize;
}

/** The position of the first frame of a WAL with this header. */
export function walStartPosition(header: WalHeader): WalPosition {
  return { offset: walHeaderSize, checksum1: header.checksum1, checksum2: header.checksum2 };
}

/** Whether two headers describe the same WAL generation (no restart in between). */
export function sameWalGeneration(a: WalHeader, b: WalHeader): boolean {
  return a.bigEndian === b.bigEndian && a.formatVersion === b.formatVersion &&
    a.pageSize === b.pageSize && a.checkpointSeq === b.checkpointSeq && a.salt1 === b.salt1 &&
    a.salt2 === b.salt2 && a.checksum1 === b.checksum1 && a.checksum2 === b.checksum2;
}

/**
 * Walks the frames in `wal` (the WAL file's bytes from `position.offset` on) and returns
 * those of complete transactions.
 *
 * Valid WAL content ends at the first frame whose salts differ from the header's, whose
 * checksum does not continue the chain, whose page number is 0 (SQLite's own rule), or
 * that is incomplete: that is how SQLite itself finds the end of the log, so it is not
 * an error. Frames after the last commit frame belong to a transaction still being
 * written (or abandoned) and are left out.
 */
export function readCommittedFrames(
  wal: Uint8Array,
  header: WalHeader,
  position: WalPosition,
): CommittedFrames {
  assertPageSize(header.pageSize);
  const frameSize = walFrameHeaderSize + header.pageSize;
  const view = viewOf(wal);
  let sum: [number, number] = [position.checksum1 >>> 0, position.checksum2 >>> 0];
  let offset = 0;
  let frames = 0;
  let committed = {
    bytes: 0,
    frames: 0,
    commits: 0,
    size: 0,
    sum,
  };
  while (offset + frameSize <= wal.byteLength) {
    const pgno = view.getUint32(offset);
    const commitSize = view.getUint32(offset + 4);
    if (
      view.getUint32(offset + 8) !== header.salt1 || view.getUint32(offset + 12) !== header.salt2
    ) {
      break;
    }
    if (pgno === 0) break;
    const next = frameChecksum(wal, offset, frameSize, header.bigEndian, sum[0], sum[1]);
    if (next[0] !== view.getUint32(offset + 16) || next[1] !== view.getUint32(offset + 20)) break;
    sum = next;
    offset += frameSize;
    frames++;
    if (commitSize !== 0) {
      committed = {
        bytes: offset,
        frames,
        commits: committed.commits + 1,
        size: commitSize,
        sum,
      };
    }
  }
  return {
    frames: wal.subarray(0, committed.bytes),
    frameCount: committed.frames,
    commits: committed.commits,
    end: {
      offset: position.offset + committed.bytes,
      checksum1: committed.sum[0],
      checksum2: committed.sum[1],
    },
    lastCommitSize: committed.size,
    validBytes: offset,
  };
}

/** Where {@link walkFrames} stopped. */
export interface FrameWalk {
  /** Bytes of valid frames walked (up to and including the first commit frame, if asked). */
  validBytes: number;
  /** Position after the last valid frame walked. */
  end: WalPosition;
  /** Frames walked. */
  frameCount: number;
  /** Database size in pages after the commit frame the walk stopped at, 0 when none. */
  commitSize: number;
}

/**
 * Walks valid frames of `bytes` (WAL content starting at `position`), continuing the
 * checksum chain, and stops at the first invalid frame, at the end of the input, or right
 * after the first commit frame. Lets a caller take a transaction too large for memory in
 * pieces, one call per piece, each continuing from the `end` of the last.
 */
export function walkFrames(bytes: Uint8Array, header: WalHeader, position: WalPosition): FrameWalk {
  assertPageSize(header.pageSize);
  const frameSize = walFrameHeaderSize + header.pageSize;
  const view = viewOf(bytes);
  let sum: [number, number] = [position.checksum1 >>> 0, position.checksum2 >>> 0];
  let offset = 0;
  let commitSize = 0;
  while (offset + frameSize <= bytes.byteLength && commitSize === 0) {
    if (
      view.getUint32(offset + 8) !== header.salt1 ||
      view.getUint32(offset + 12) !== header.salt2 || view.getUint32(offset) === 0
    ) {
      break;
    }
    const next = frameChecksum(bytes, offset, frameSize, header.bigEndian, sum[0], sum[1]);
    if (next[0] !== view.getUint32(offset + 16) || next[1] !== view.getUint32(offset + 20)) break;
    sum = next;
    commitSize = view.getUint32(offset + 4);
    offset += frameSize;
  }
  return {
    validBytes: offset,
    end: { offset: position.offset + offset, checksum1: sum[0], checksum2: sum[1] },
    frameCount: offset / frameSize,
    commitSize,
  };
}

/**
 * Memory that {@link readWalFile} may read into instead of allocating, so that a process
 * reading many WAL pieces does not leave a trail of large buffers for the garbage collector.
 * What a read returns then points into it, and is only valid until the next read with it.
 */
export interface WalReadBuffer {
  /** The memory; replaced by a larger one when a read needs more, up to `limit` bytes. */
  bytes: Uint8Array;
  /** Reads larger than this get memory of their own. */
  limit: number;
}

/** Reads up to `length` bytes at `offset`; fewer if the file ends first. */
async function readAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
  into?: WalReadBuffer,
): Promise<Uint8Array> {
  let buf: Uint8Array;
  if (into && length <= into.limit) {
    if (into.bytes.byteLength < length) into.bytes = new Uint8Array(length);
    buf = into.bytes.subarray(0, length);
  } else buf = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buf.subarray(0, filled);
}

/**
 * Reads the complete transactions of the WAL file at `path` after `position`.
 *
 * The file gets its own descriptor, which is safe for `-wal` even while this process holds
 * a SQLite connection (SQLite keeps no locks on it; see docs/sqlite-facts.md, fact 1). Only the
 * header and the bytes from `position.offset` on are read.
 *
 * @param header The header seen last time, or null to start from the file's current header.
 * @param position Where the last read ended (`end` of its result); only with `header`; null
 *   means the first frame.
 * @returns null when the file is missing or shorter than a header (e.g. just truncated by a
 *   TRUNCATE checkpoint); `restarted: true` with the new header when the WAL no longer has
 *   `header`'s salts or checkpoint sequence (frames are then not read: start again from the
 *   new header); otherwise the frames found.
 * @param maxBytes Read about this many bytes past `position` at most, so that a reader far
 *   behind takes the backlog in bounded pieces; more when one transaction alone is larger.
 * @param into Memory to read into (see {@link WalReadBuffer}); the frames returned point
 *   into it.
 * @param committed The wal-index header SQLite published (read before this call): frames
 *   past its `mxFrame` are never returned. Without it, every valid commit frame counts.
 * @param wholeTransactions When one transaction alone is larger than `maxBytes`, read it
 *   whole (true) or return no frames with `more` set (false: the caller streams it, see
 *   {@link walkFrames}).
 * @throws WalFormatError when the file's header is invalid (a restart may be writing it).
 * @example
 * ```ts
 * const read = await readWalFile("app.db-wal", null, null); // every complete transaction
 * if (read && !read.restarted) console.log(read.commits, "commits in", read.frameCount, "frames");
 * ```
 */
export async function readWalFile(
  path: string,
  header: WalHeader | null,
  position: WalPosition | null,
  maxBytes: number = Number.POSITIVE_INFINITY,
  into?: WalReadBuffer,
  committed?: WalIndexHeader,
  wholeTransactions = true,
): Promise<WalFileRead | null> {
  if (header === null && position !== null) {
    throw new Error("readWalFile: a position is only meaningful with the header it belongs to");
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  try {
    const size = (await file.stat()).size;
    if (size < walHeaderSize) return null;
    const headerBytes = await readAt(file, 0, walHeaderSize);
    if (headerBytes.byteLength < walHeaderSize) return null;
    const current = parseWalHeader(headerBytes);
    if (header !== null && !sameWalGeneration(header, current)) {
      return { restarted: true, header: current };
    }
    const start = position ?? walStartPosition(current);
    const frameSize = walFrameHeaderSize + current.pageSize;
    // Frames appended after the stat are left for the next read; a restart racing this
    // read is harmless because its frames carry new salts and end the walk. Past what the
    // wal-index publishes nothing is committed, whatever the frames look like; a wal-index
    // of another WAL (a restart half seen) publishes nothing of this one yet.
    const end = committed === undefined
      ? size
      : indexDescribes(committed, current)
      ? Math.min(size, walHeaderSize + committed.mxFrame * frameSize)
      : 0;
    const available = Math.max(0, end - start.offset);
    const bounded = Math.min(available, Math.max(1, Math.ceil(maxBytes / frameSize)) * frameSize);
    let found = readCommittedFrames(
      await readAt(file, start.offset, bounded, into),
      current,
      start,
    );
    // More to read only when valid frames ran up to the bound; frames of an earlier WAL
    // left behind a restart (old salts) end the log, however long the file is.
    let more = bounded < available && found.validBytes + frameSize > bounded;
    if (found.commits === 0 && more && wholeTransactions) {
      // One transaction larger than the bound: it has to be read whole.
      found = readCommittedFrames(
        await readAt(file, start.offset, available, into),
        current,
        start,
      );
      more = false;
    }
    return { restarted: false, header: current, more, ...found };
  } finally {
    file.close();
  }
}

/** The {@link SegmentInfo} of frames read from a WAL with `header`, starting at `start`. */
export function segmentInfoOf(
  header: WalHeader,
  start: WalPosition,
  read: CommittedFrames,
): SegmentInfo {
  return {
    pageSize: header.pageSize,
    salt1: header.salt1,
    salt2: header.salt2,
    bigEndian: header.bigEndian,
    checksumStart: [start.checksum1, start.checksum2],
    checksumEnd: [read.end.checksum1, read.end.checksum2],
    frameCount: read.frameCount,
    commits: read.commits,
    commitSize: read.lastCommitSize,
  };
}

/** Decodes the frames of a segment, in order. */
export function* segmentFrames(bytes: Uint8Array, pageSize: number): Generator<WalFrame> {
  assertPageSize(pageSize);
  const frameSize = walFrameHeaderSize + pageSize;
  if (bytes.byteLength % frameSize !== 0) {
    throw new WalFormatError(
      `segment is ${bytes.byteLength} bytes, not a multiple of the frame size ${frameSize}`,
    );
  }
  const view = viewOf(bytes);
  for (let offset = 0; offset < bytes.byteLength; offset += frameSize) {
    yield {
      pgno: view.getUint32(offset),
      commitSize: view.getUint32(offset + 4),
      page: bytes.subarray(offset + walFrameHeaderSize, offset + frameSize),
    };
  }
}

/** Checks frames one by one against a SegmentInfo; shared by verifySegment and the applier. */
interface SegmentChecker {
  /** Checks the frame at `bytes[offset, offset + frameSize)` and advances the chain. */
  frame(bytes: Uint8Array, offset: number): void;
  /** Checks the totals once every frame was seen. */
  finish(): void;
}

function createSegmentChecker(info: SegmentInfo): SegmentChecker {
  assertPageSize(info.pageSize);
  const frameSize = walFrameHeaderSize + info.pageSize;
  let sum: [number, number] = [info.checksumStart[0] >>> 0, info.checksumStart[1] >>> 0];
  let index = 0;
  let commits = 0;
  let lastCommitSize = 0;
  let lastIsCommit = false;
  return {
    frame(bytes, offset) {
      if (index >= info.frameCount) {
        throw new WalFormatError(`segment has more than the expected ${info.frameCount} frames`);
      }
      const view = viewOf(bytes);
      const salts = [view.getUint32(offset + 8), view.getUint32(offset + 12)];
      if (salts[0] !== info.salt1 || salts[1] !== info.salt2) {
        throw new WalFormatError(
          `frame ${index} has salts ${hex(salts[0])}/${hex(salts[1])}, ` +
            `expected ${hex(info.salt1)}/${hex(info.salt2)}`,
        );
      }
      const stored: [number, number] = [view.getUint32(offset + 16), view.getUint32(offset + 20)];
      const next = frameChecksum(bytes, offset, frameSize, info.bigEndian, sum[0], sum[1]);
      if (next[0] !== stored[0] || next[1] !== stored[1]) {
        throw new WalFormatError(
          `frame ${index} checksum ${pairHex(stored)} does not continue the chain ` +
            `(computed ${pairHex(next)})`,
        );
      }
      sum = next;
      const commitSize = view.getUint32(offset + 4);
      lastIsCommit = commitSize !== 0;
      if (lastIsCommit) {
        commits++;
        lastCommitSize = commitSize;
      }
      index++;
    },
    finish() {
      if (index !== info.frameCount) {
        throw new WalFormatError(`segment has ${index} frames, expected ${info.frameCount}`);
      }
      if (sum[0] !== info.checksumEnd[0] >>> 0 || sum[1] !== info.checksumEnd[1] >>> 0) {
        throw new WalFormatError(
          `segment checksum chain ends at ${pairHex(sum)}, expected ${pairHex(info.checksumEnd)}`,
        );
      }
      if (!lastIsCommit) throw new WalFormatError("segment's last frame is not a commit frame");
      if (commits !== info.commits) {
        throw new WalFormatError(`segment has ${commits} commits, expected ${info.commits}`);
      }
      if (lastCommitSize !== info.commitSize) {
        throw new WalFormatError(
          `segment ends with ${lastCommitSize} pages, expected ${info.commitSize}`,
        );
      }
    },
  };
}

/** Throws unless the frame's page number and commit size are possible in SQLite. */
function checkFrameNumbers(view: DataView, offset: number, index: number): void {
  const pgno = view.getUint32(offset);
  if (pgno === 0 || pgno > maxPageNumber) {
    throw new WalFormatError(`frame ${index} has invalid page number ${pgno}`);
  }
  const commitSize = view.getUint32(offset + 4);
  if (commitSize > maxPageNumber) {
    throw new WalFormatError(`frame ${index} has invalid commit size ${commitSize}`);
  }
}

/**
 * Verifies a segment against its metadata: whole frames, the expected count, the WAL's
 * salts, an unbroken checksum chain from `checksumStart` to `checksumEnd`, valid page
 * numbers, and a commit frame at the end (with the expected commit count and size).
 * @throws WalFormatError naming the first problem found.
 */
export function verifySegment(bytes: Uint8Array, info: SegmentInfo): void {
  assertPageSize(info.pageSize);
  const frameSize = walFrameHeaderSize + info.pageSize;
  if (bytes.byteLength === 0) throw new WalFormatError("segment is empty");
  if (bytes.byteLength % frameSize !== 0) {
    throw new WalFormatError(
      `segment is ${bytes.byteLength} bytes, not a multiple of the frame size ${frameSize}`,
    );
  }
  const frameCount = bytes.byteLength / frameSize;
  if (frameCount !== info.frameCount) {
    throw new WalFormatError(`segment has ${frameCount} frames, expected ${info.frameCount}`);
  }
  const checker = createSegmentChecker(info);
  const view = viewOf(bytes);
  for (let index = 0; index < frameCount; index++) {
    checkFrameNumbers(view, index * frameSize, index);
    checker.frame(bytes, index * frameSize);
  }
  checker.finish();
}

/**
 * Writes all of `bytes` at `offset` (a write may be partial). Synchronous on purpose: one
 * page is a few microseconds of syscalls, while the async ops cost a thread-pool round
 * trip each and made applying about 20 times slower.
 */
function writeAt(file: Deno.FsFile, offset: number, bytes: Uint8Array): void {
  file.seekSync(offset, Deno.SeekMode.Start);
  let written = 0;
  while (written < bytes.byteLength) written += file.writeSync(bytes.subarray(written));
}

/**
 * Creates a streaming applier of segment bytes to a database file: each frame's page is
 * written at (pgno - 1) × pageSize, and at each commit frame the file is truncated or
 * extended to commitSize × pageSize. Chunks may split frames anywhere; memory stays at
 * one frame.
 *
 * Given a {@link SegmentInfo}, every frame is also checked (salts, checksum chain) before
 * it is written, and `finish()` checks the totals; prefer that form. Frames before a bad
 * one are already written, so apply into a scratch copy and discard it on error.
 *
 * @param file Open for writing; its position is moved. Not a descriptor of a database
 *   that this process also has open through SQLite (docs/sqlite-facts.md, fact 1).
 * @param stopAfterCommits Apply only the first N transactions (point-in-time restore inside
 *   a segment); later frames are still checked but not written.
 * @example
 * ```ts
 * const file = await Deno.open("restored.db", { read: true, write: true });
 * const applier = createFrameApplier(file, info); // info: the segment's SegmentInfo
 * await applier.write(frames);
 * const result = await applier.finish(); // throws WalFormatError on a broken chain
 * ```
 */
export function createFrameApplier(
  file: Deno.FsFile,
  pageSizeOrInfo: number | SegmentInfo,
  stopAfterCommits?: number,
): FrameApplier {
  const info = typeof pageSizeOrInfo === "number" ? null : pageSizeOrInfo;
  const pageSize = info === null ? pageSizeOrInfo as number : info.pageSize;
  assertPageSize(pageSize);
  const checker = info === null ? null : createSegmentChecker(info);
  const frameSize = walFrameHeaderSize + pageSize;
  const pending = new Uint8Array(frameSize);
  let filled = 0;
  let frames = 0;
  let commits = 0;
  let commitSize = 0;
  let lastIsCommit = false;

  const apply = (bytes: Uint8Array, offset: number): void => {
    const view = viewOf(bytes);
    checkFrameNumbers(view, offset, frames);
    checker?.frame(bytes, offset);
    const pgno = view.getUint32(offset);
    const size = view.getUint32(offset + 4);
    if (stopAfterCommits !== undefined && commits >= stopAfterCommits) {
      // Past the target commit: still checked above, never written.
      frames++;
      lastIsCommit = size !== 0;
      return;
    }
    writeAt(
      file,
      (pgno - 1) * pageSize,
      bytes.subarray(offset + walFrameHeaderSize, offset + frameSize),
    );
    frames++;
    lastIsCommit = size !== 0;
    if (lastIsCommit) {
      // Pages past the new end (written earlier in a shrinking transaction) are dropped here.
      file.truncateSync(size * pageSize);
      commits++;
      commitSize = size;
    }
  };

  const writeChunk = (chunk: Uint8Array): void => {
    let at = 0;
    if (filled > 0) {
      const take = Math.min(frameSize - filled, chunk.byteLength);
      pending.set(chunk.subarray(0, take), filled);
      filled += take;
      at = take;
      if (filled < frameSize) return;
      filled = 0;
      apply(pending, 0);
    }
    // Whole frames are applied straight from the chunk; only a straddling tail is copied.
    for (; chunk.byteLength - at >= frameSize; at += frameSize) apply(chunk, at);
    if (at < chunk.byteLength) {
      pending.set(chunk.subarray(at), 0);
      filled = chunk.byteLength - at;
    }
  };

  return {
    // The work is synchronous (see writeAt); the executor turns a throw into a rejection.
    write: (chunk) => new Promise<void>((resolve) => resolve(writeChunk(chunk))),
    finish: () =>
      new Promise<ApplyResult>((resolve) => {
        if (filled > 0) {
          throw new WalFormatError(`segment ends with a partial frame of ${filled} bytes`);
        }
        if (frames === 0) throw new WalFormatError("segment is empty");
        if (!lastIsCommit) throw new WalFormatError("segment's last frame is not a commit frame");
        checker?.finish();
        resolve({ frames, commits, commitSize });
      }),
  };
}
