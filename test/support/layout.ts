/**
 * The bucket layout as the tests read it: stored keys parsed into database, generation, kind and
 * txids, and objects removed or damaged by hand, all without Walsync's own code.
 * @module
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { join } from "node:path";
import type { S3TestBucket, TestBucket } from "./bucket.ts";

/** A stored object of the bucket layout, parsed from its key. */
export interface StoredKey {
  key: string;
  db: string;
  generation: string;
  kind: "snapshot" | "wal";
  firstTxid: number;
  lastTxid: number;
}

const keyPattern =
  /^([^/]+)\/generations\/([^/]+)\/(?:snapshots\/([0-9a-f]{16})\.db|wal\/([0-9a-f]{16})-([0-9a-f]{16})\.wal)$/;

/** Parses a key of the bucket layout (null for anything else, e.g. a file bucket's temp files). */
export function parseStoredKey(key: string): StoredKey | null {
  const m = keyPattern.exec(key);
  if (!m) return null;
  const [, db, generation, snap, first, last] = m;
  if (snap !== undefined) {
    const txid = parseInt(snap, 16);
    return { key, db, generation, kind: "snapshot", firstTxid: txid, lastTxid: txid };
  }
  return {
    key,
    db,
    generation,
    kind: "wal",
    firstTxid: parseInt(first, 16),
    lastTxid: parseInt(last, 16),
  };
}

/** Every stored object of the layout (of `db` when given), in key order. */
export async function storedObjects(bucket: TestBucket, db?: string): Promise<StoredKey[]> {
  return (await bucket.keys()).map(parseStoredKey).filter((k): k is StoredKey =>
    k !== null && (db === undefined || k.db === db)
  );
}

/** Keys of WAL segments in the bucket (of `db` when given), sorted. */
export async function segmentKeys(bucket: TestBucket, db?: string): Promise<string[]> {
  return (await storedObjects(bucket, db)).filter((k) => k.kind === "wal").map((k) => k.key);
}

/** Generation ids in the bucket for `db`, oldest first. */
export async function generationsOf(bucket: TestBucket, db: string): Promise<string[]> {
  return [...new Set((await storedObjects(bucket, db)).map((k) => k.generation))].sort();
}

/** Highest txid any stored object of `db` reaches, by key (-1 when none). */
export async function maxStoredTxid(bucket: TestBucket, db: string): Promise<number> {
  return Math.max(-1, ...(await storedObjects(bucket, db)).map((k) => k.lastTxid));
}

/** When a generation id says it started (ms since the epoch). */
export function generationStart(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id);
  if (!m) throw new Error(`not a generation id: ${id}`);
  return Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

/** Deletes one object (and, on `file://`, its metadata file) without Walsync code. */
export async function removeObject(bucket: TestBucket, key: string): Promise<void> {
  if (bucket.kind === "file") {
    const dir = (bucket as TestBucket & { dir: string }).dir;
    await Deno.remove(join(dir, key));
    await Deno.remove(join(dir, `${key}.meta.json`)).catch(() => {});
    return;
  }
  const s3 = bucket as S3TestBucket;
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${s3.prefix}/${key}` }));
}

/** Flips one byte in the middle of a stored object, keeping its metadata (digest) as it was. */
export async function tamper(bucket: TestBucket, key: string): Promise<void> {
  const { bytes, metadata } = await bucket.read(key);
  const damaged = bytes.slice();
  damaged[Math.floor(damaged.length / 2)] ^= 0x5a;
  await bucket.write(key, { bytes: damaged, metadata });
}
