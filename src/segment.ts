/**
 * WAL segment metadata: what a segment object says about itself so that it can be checked
 * alone (checksum chain, salts, frame count) and in sequence (txids, previous digest).
 * @module
 */
import { integrityError } from "./errors.ts";
import { meta } from "./layout.ts";
import type { Metadata } from "./storage.ts";
import type { SegmentInfo } from "./wal.ts";

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
