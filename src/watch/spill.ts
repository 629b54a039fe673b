/**
 * A transaction larger than a segment's bound, taken from the WAL in pieces: each piece is
 * checked (salts, checksum chain) and fed to a zstd stream whose output goes to a spill
 * file as it is produced, so memory stays at one piece whatever the transaction's size.
 * The spill file is then uploaded like any file (streamed) and removed.
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { constants as zlibConstants, createZstdCompress, zstdDecompressSync } from "node:zlib";
import { walFrameHeaderSize, type WalHeader, walkFrames, type WalPosition } from "../format/wal.ts";
import { readAt } from "../support/read_at.ts";
import { writeAll } from "../support/write_all.ts";

/** Bytes of WAL read per piece (whole frames are taken from it). */
const pieceBytes = 4 * 1024 * 1024;

/** A transaction spilled to a compressed file. */
export interface SpilledTransaction {
  /** The compressed body (one zstd frame with its content checksum). */
  path: string;
  /** SHA256 of the compressed body. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** Frames in the transaction. */
  frameCount: number;
  /** Position after its commit frame. */
  end: WalPosition;
  /** Database size in pages after it. */
  commitSize: number;
  /** Bytes of raw frames (the decoded size). */
  decodedSize: number;
}

/** Output bytes held back so that empty trailing zstd frames can be dropped. */
const tailBytes = 64;
/** An empty zstd frame: magic, a 2-byte header, one empty last block, the content checksum. */
const emptyFrameBytes = 13;

/**
 * `tail` without the empty zstd frames at its end. `node:zlib` in Deno sometimes ends its
 * output with an empty second frame; a segment body is exactly one frame (as
 * `encodeSegment` makes sure for bodies compressed in memory).
 */
function withoutEmptyFrames(tail: Uint8Array): Uint8Array {
  let end = tail.byteLength;
  while (end >= emptyFrameBytes) {
    const frame = tail.subarray(end - emptyFrameBytes, end);
    const magic = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, true);
    if (magic !== 0xfd2fb528) break;
    try {
      if (zstdDecompressSync(frame).byteLength !== 0) break;
    } catch {
      break;
    }
    end -= emptyFrameBytes;
  }
  return tail.subarray(0, end);
}

/**
 * Streams the one transaction that starts at `start` in the WAL at `walPath` into a
 * compressed spill file in `dir`, reading no further than `endOffset` (the end of what
 * SQLite published as committed). Returns null, with nothing left behind, when the frames
 * stop before a commit frame (the WAL changed under us: read again later).
 */
export async function spillTransaction(
  walPath: string,
  header: WalHeader,
  start: WalPosition,
  endOffset: number,
  dir: string,
): Promise<SpilledTransaction | null> {
  const frameSize = walFrameHeaderSize + header.pageSize;
  const piece = new Uint8Array(Math.max(1, Math.floor(pieceBytes / frameSize)) * frameSize);
  const path = join(dir, `spill-${crypto.randomUUID().slice(0, 8)}.zst`);
  const wal = await Deno.open(walPath, { read: true });
  const out = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  const hash = createHash("sha256");
  let size = 0;
  let writing: Promise<void> = Promise.resolve();
  const zstd = createZstdCompress({
    params: {
      [zlibConstants.ZSTD_c_compressionLevel]: 1,
      [zlibConstants.ZSTD_c_checksumFlag]: 1,
    },
  });
  /** The last bytes of output, held back until the end (see {@link withoutEmptyFrames}). */
  let tail = new Uint8Array(0);
  const emit = (bytes: Uint8Array) => {
    if (bytes.byteLength === 0) return;
    hash.update(bytes);
    size += bytes.byteLength;
    writing = writing.then(() => writeAll(out, bytes));
  };
  zstd.on("data", (chunk: Uint8Array) => {
    const joined = new Uint8Array(tail.byteLength + chunk.byteLength);
    joined.set(tail);
    joined.set(chunk, tail.byteLength);
    const keep = Math.min(joined.byteLength, tailBytes);
    emit(joined.subarray(0, joined.byteLength - keep));
    tail = joined.slice(joined.byteLength - keep);
  });
  const ended = new Promise<void>((resolve, reject) => {
    zstd.on("end", resolve);
    zstd.on("error", reject);
  });
  let position = start;
  let frameCount = 0;
  let commitSize = 0;
  let reachedCommit = false;
  let complete = false;
  try {
    while (position.offset < endOffset) {
      const want = Math.min(piece.byteLength, endOffset - position.offset);
      const got = await readAt(wal, position.offset, piece.subarray(0, want));
      const walk = walkFrames(piece.subarray(0, got), header, position);
      if (walk.frameCount === 0) break;
      // The compressor is done with the piece once the write's callback runs: then reuse it.
      await new Promise<void>((resolve, reject) =>
        zstd.write(piece.subarray(0, walk.validBytes), (err) => err ? reject(err) : resolve())
      );
      await writing; // the compressed output stays small in memory too
      position = walk.end;
      frameCount += walk.frameCount;
      if (walk.commitSize !== 0) {
        commitSize = walk.commitSize;
        reachedCommit = true;
        break;
      }
      if (walk.validBytes < got) break; // an invalid frame before the commit
    }
    zstd.end();
    await ended;
    emit(withoutEmptyFrames(tail));
    await writing;
    await out.sync();
    complete = reachedCommit;
  } catch (err) {
    zstd.destroy();
    throw err;
  } finally {
    wal.close();
    out.close();
    if (!complete) await Deno.remove(path).catch(() => {});
  }
  if (!complete) return null;
  return {
    path,
    sha256: hash.digest("hex"),
    size,
    frameCount,
    end: position,
    commitSize,
    decodedSize: frameCount * frameSize,
  };
}
