/**
 * WAL segment metadata: what a segment object says about itself so that it can be checked
 * alone (checksum chain, salts, frame count) and in sequence (txids, previous digest); and
 * the encoding of its body (raw frames, or zstd with its content checksum).
 * @module
 */
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { integrityError } from "../support/errors.ts";
import { meta, type SegmentEncoding } from "../format/layout.ts";
import type { Metadata } from "../storage/storage.ts";
import { type SegmentInfo, walFrameHeaderSize } from "../format/wal.ts";

/** Everything a segment's metadata records. */
export interface SegmentMeta extends SegmentInfo {
  /** First commit in the segment. */
  txidFirst: number;
  /** Last commit in the segment. */
  txidLast: number;
  /** SHA256 of the object before it in the generation (the snapshot it follows, or a segment). */
  prevSha256: string;
  /** When the segment's frames were read from the WAL (ISO 8601). */
  created: string;
  /** Database name. */
  db: string;
  /** Generation id. */
  generation: string;
}

const hexPair = (pair: [number, number]) =>
  `${pair[0].toString(16).padStart(8, "0")}${pair[1].toString(16).padStart(8, "0")}`;

/** Metadata for a segment object (without `sha256`/`size`, which `object.ts` adds). */
export function segmentMetadata(segment: SegmentMeta): Metadata {
  return {
    [meta.kind]: "wal",
    [meta.db]: segment.db,
    [meta.generation]: segment.generation,
    [meta.created]: segment.created,
    [meta.txidFirst]: String(segment.txidFirst),
    [meta.txidLast]: String(segment.txidLast),
    [meta.prevSha256]: segment.prevSha256,
    [meta.pageSize]: String(segment.pageSize),
    [meta.salt]: hexPair([segment.salt1, segment.salt2]),
    [meta.byteOrder]: segment.bigEndian ? "big" : "little",
    [meta.checksumStart]: hexPair(segment.checksumStart),
    [meta.checksumEnd]: hexPair(segment.checksumEnd),
    [meta.frames]: String(segment.frameCount),
    [meta.commitSize]: String(segment.commitSize),
  };
}

/** Reads a segment's metadata; throws an integrity error naming the key and the field at fault. */
export function parseSegmentMetadata(key: string, metadata: Metadata): SegmentMeta {
  const field = (name: string): string => {
    const value = metadata[name];
    if (value === undefined) throw integrityError(key, `${name} metadata is missing`);
    return value;
  };
  const int = (name: string): number => {
    const text = field(name);
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
      throw integrityError(key, `${name} metadata is malformed`, "an integer", text);
    }
    return value;
  };
  const pair = (name: string): [number, number] => {
    const text = field(name);
    if (!/^[0-9a-f]{16}$/.test(text)) {
      throw integrityError(key, `${name} metadata is malformed`, "16 hex digits", text);
    }
    return [parseInt(text.slice(0, 8), 16), parseInt(text.slice(8), 16)];
  };
  const kind = field(meta.kind);
  if (kind !== "wal") throw integrityError(key, "object is not a WAL segment", "wal", kind);
  const order = field(meta.byteOrder);
  if (order !== "big" && order !== "little") {
    throw integrityError(key, `${meta.byteOrder} metadata is malformed`, "big or little", order);
  }
  const prevSha256 = field(meta.prevSha256);
  if (!/^[0-9a-f]{64}$/.test(prevSha256)) {
    throw integrityError(
      key,
      `${meta.prevSha256} metadata is malformed`,
      "64 hex digits",
      prevSha256,
    );
  }
  const [salt1, salt2] = pair(meta.salt);
  return {
    db: field(meta.db),
    generation: field(meta.generation),
    created: field(meta.created),
    txidFirst: int(meta.txidFirst),
    txidLast: int(meta.txidLast),
    prevSha256,
    pageSize: int(meta.pageSize),
    salt1,
    salt2,
    bigEndian: order === "big",
    checksumStart: pair(meta.checksumStart),
    checksumEnd: pair(meta.checksumEnd),
    frameCount: int(meta.frames),
    commits: int(meta.txidLast) - int(meta.txidFirst) + 1,
    commitSize: int(meta.commitSize),
  };
}

/** zstd level for segments: level 1 already shrinks small-commit WALs ~80x at GB/s. */
const zstdLevel = 1;

/**
 * Compresses a segment's raw WAL frames for upload; returns the object body and the metadata
 * fields describing its encoding (merged into segmentMetadata's result by the caller).
 * @example
 * ```ts
 * const { body, metadata } = encodeSegment(frames); // zstd; metadata names the encoding
 * const stored = { ...segmentMetadata(segment), ...metadata }; // what the object carries
 * const same = decodeSegment(key, body, segmentBodyOf(key, stored, segment)); // equals frames
 * ```
 */
export function encodeSegment(frames: Uint8Array): { body: Uint8Array; metadata: Metadata } {
  const compressed = zstdCompressSync(frames, {
    params: {
      [zlibConstants.ZSTD_c_compressionLevel]: zstdLevel,
      [zlibConstants.ZSTD_c_checksumFlag]: 1,
    },
  });
  const body = new Uint8Array(compressed.buffer, compressed.byteOffset, compressed.byteLength);
  return {
    body: body.subarray(0, singleFrameEnd(body)),
    metadata: {
      [meta.encoding]: "zstd" satisfies SegmentEncoding,
      [meta.decodedSize]: String(frames.byteLength),
    },
  };
}

/**
 * Where the first zstd frame of the compressor's output ends. `node:zlib` in Deno sometimes
 * appends an empty second frame (when the output passes 16 KiB); a segment is one frame, so
 * that one is dropped, after checking it really is empty.
 */
function singleFrameEnd(body: Uint8Array): number {
  const first = walkZstdFrame(body, 0, null);
  if (typeof first === "string") throw new Error(`zstd wrote a malformed frame: ${first}`);
  for (let at = first; at < body.byteLength;) {
    const next = walkZstdFrame(body, at, 0);
    if (typeof next === "string" || zstdDecompressSync(body.subarray(at, next)).byteLength !== 0) {
      throw new Error("zstd wrote more than one frame with content");
    }
    at = next;
  }
  return first;
}

/** How a segment's body is stored, and the byte length of its frames once decoded. */
export interface SegmentBody {
  /** `identity` (raw frames) or `zstd`. */
  encoding: SegmentEncoding;
  /** Byte length of the raw frames: `frames × (24 + page size)`. */
  decodedSize: number;
}

/**
 * Reads a segment's encoding from its metadata and checks the declared decoded size against
 * the frame count and page size. No `walsync-encoding` (format 1) means raw frames. Throws an
 * integrity error naming the key for an unknown encoding or a size that does not add up.
 */
export function segmentBodyOf(key: string, metadata: Metadata, info: SegmentInfo): SegmentBody {
  const value = metadata[meta.encoding];
  let encoding: SegmentEncoding;
  if (value === undefined || value === "identity") encoding = "identity";
  else if (value === "zstd") encoding = "zstd";
  else {
    throw integrityError(
      key,
      `unknown ${meta.encoding} ${JSON.stringify(value)} (a newer walsync may read it)`,
      "identity or zstd",
      value,
    );
  }
  const expected = info.frameCount * (walFrameHeaderSize + info.pageSize);
  if (!Number.isSafeInteger(expected)) {
    throw integrityError(key, `${meta.frames} × (24 + page size) is not a byte count`);
  }
  const text = metadata[meta.decodedSize];
  if (text === undefined) {
    if (encoding === "zstd") throw integrityError(key, `${meta.decodedSize} metadata is missing`);
    return { encoding, decodedSize: expected };
  }
  const declared = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(declared)) {
    throw integrityError(key, `${meta.decodedSize} metadata is malformed`, "a byte count", text);
  }
  if (declared !== expected) {
    throw integrityError(
      key,
      `${meta.decodedSize} metadata differs from ${meta.frames} × (24 + page size)`,
      `${expected} bytes`,
      `${declared} bytes`,
    );
  }
  return { encoding, decodedSize: declared };
}

/**
 * Decodes a segment's stored bytes (whose SHA256 was already checked) into its raw WAL frames.
 * A zstd body must be exactly one zstd frame carrying a content checksum (which the
 * decompressor verifies), and must decode to exactly `body.decodedSize` bytes; output beyond
 * that is never produced, so a bogus object cannot balloon memory. Every failure is an
 * integrity error naming the key. The WAL checks (salts, checksum chain) come after this.
 */
export function decodeSegment(key: string, stored: Uint8Array, body: SegmentBody): Uint8Array {
  if (body.encoding === "identity") return stored;
  const end = walkZstdFrame(stored, 0, body.decodedSize);
  const problem = typeof end === "string"
    ? end
    : end !== stored.byteLength
    ? `${stored.byteLength - end} bytes after the zstd frame`
    : null;
  if (problem !== null) throw integrityError(key, `zstd body is malformed: ${problem}`);
  if (body.decodedSize === 0) throw integrityError(key, "segment is empty");
  let decoded: Uint8Array;
  try {
    decoded = zstdDecompressSync(stored, { maxOutputLength: body.decodedSize });
  } catch (err) {
    if (err instanceof RangeError) {
      throw integrityError(
        key,
        "zstd body decodes to more bytes than its metadata says",
        `${body.decodedSize} bytes`,
        `more than ${body.decodedSize} bytes`,
      );
    }
    const message = err instanceof Error ? err.message : String(err);
    throw integrityError(key, `zstd body does not decode: ${message}`);
  }
  if (decoded.byteLength !== body.decodedSize) {
    throw integrityError(
      key,
      "zstd body decodes to a size other than its metadata says",
      `${body.decodedSize} bytes`,
      `${decoded.byteLength} bytes`,
    );
  }
  return new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
}

/**
 * Walks the structure of the zstd frame at `bytes[start]` (RFC 8878, section 3.1.1) without
 * decoding it: it must carry a content checksum, need no dictionary, and record (if it records
 * one) a content size of `contentSize` (unless null). Returns where the frame ends, or the
 * first problem. The decompressor alone would ignore trailing bytes and return nothing at all
 * for a truncated frame.
 */
function walkZstdFrame(
  bytes: Uint8Array,
  start: number,
  contentSize: number | null,
): number | string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (start + 5 > bytes.byteLength || view.getUint32(start, true) !== 0xfd2fb528) {
    return "not a zstd frame (bad magic number)";
  }
  const descriptor = bytes[start + 4];
  const contentSizeFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  if (descriptor & 0x08) return "reserved bit set in the frame header";
  if (!(descriptor & 0x04)) return "frame has no content checksum";
  if (descriptor & 0x03) return "frame needs a dictionary";
  let at = start + 5 + (singleSegment ? 0 : 1);
  const sizeBytes = contentSizeFlag === 0 ? singleSegment : [0, 2, 4, 8][contentSizeFlag];
  if (at + sizeBytes > bytes.byteLength) return "frame header is truncated";
  if (sizeBytes > 0 && contentSize !== null) {
    let recorded: number;
    if (sizeBytes === 1) recorded = bytes[at];
    else if (sizeBytes === 2) recorded = view.getUint16(at, true) + 256;
    else if (sizeBytes === 4) recorded = view.getUint32(at, true);
    else recorded = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
    if (recorded !== contentSize) {
      return `frame header says ${recorded} bytes of content, metadata ${contentSize}`;
    }
  }
  at += sizeBytes;
  for (;;) {
    if (at + 3 > bytes.byteLength) return "frame is truncated (block header missing)";
    const header = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);
    const type = (header >> 1) & 3;
    if (type === 3) return "reserved block type";
    at += 3 + (type === 1 ? 1 : header >>> 3);
    if (at > bytes.byteLength) return "frame is truncated (block cut short)";
    if (header & 1) break; // last block
  }
  at += 4;
  if (at > bytes.byteLength) return "frame is truncated (content checksum missing)";
  return at;
}
