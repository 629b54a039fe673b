/**
 * The upload queue of one database: sealed segments wait here, oldest first, and go up in
 * that order (a segment's `prevSha256` names the one before it, so order is the chain).
 * @module
 */
import { WalsyncError } from "../support/errors.ts";
import { sha256Hex } from "../support/hash.ts";
import type { HistoryWriter } from "../history/writer.ts";
import { putBytesObject, putFileObject } from "../storage/object.ts";
import type { Metadata, Storage } from "../storage/storage.ts";
import type { Limiter } from "./locks.ts";

/** A segment read from the WAL and sealed, waiting for its upload; uploads keep this order. */
export interface SealedSegment {
  /** Object key. */
  key: string;
  /** Encoded body (compressed frames): in memory, or a spill file removed once uploaded. */
  body: Uint8Array | { path: string; sha256: string };
  /** Object metadata. */
  metadata: Metadata;
  /** Last txid in the segment. */
  txidLast: number;
  /** When its oldest commit was first seen (ms since epoch): the age of what waits. */
  seenAt: number;
}

/**
 * Runs a storage operation; anything it throws that is not already a Walsync error becomes a
 * `storage` error. A `file://` bucket throws the file system's own errors (disk full,
 * permission denied): they are storage trouble like any S3 failure, retried while the
 * generation goes on, not a reason to start a new one.
 */
export async function asStorage<T>(task: () => Promise<T>): Promise<T> {
  try {
    return await task();
  } catch (err) {
    if (err instanceof WalsyncError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new WalsyncError("storage", `storage write failed: ${message}`);
  }
}

/** Upload totals since start. */
export interface UploadStats {
  /** Bytes uploaded. */
  bytesUploaded: number;
  /** Objects uploaded. */
  objectsUploaded: number;
}

/** The queue and what it has done. */
export interface Uploader {
  /** Queues a sealed segment behind the others. */
  push(segment: SealedSegment): void;
  /** Uploads the queued segments in order; throws (keeping the rest queued) on failure. */
  flush(): Promise<true>;
  /** Segments waiting. */
  readonly pendingCount: number;
  /** When the oldest commit waiting in the queue was first seen, 0 when none waits. */
  readonly oldestSeenAt: number;
  /** Last txid known to be in storage. */
  readonly shippedTxid: number | undefined;
  /** Records an object uploaded outside the queue (a snapshot) up to `txid`. */
  recordUpload(size: number, txid: number): void;
  /** Totals since start. */
  readonly stats: Readonly<UploadStats>;
}

/**
 * Creates the upload queue of one database on `storage`, uploads bounded by `limiter`; the
 * head of `history` follows each flushed batch.
 */
export function createUploader(
  storage: Storage,
  limiter: Limiter,
  history?: HistoryWriter,
): Uploader {
  const pending: SealedSegment[] = [];
  const stats: UploadStats = { bytesUploaded: 0, objectsUploaded: 0 };
  let shippedTxid: number | undefined;
  return {
    push(segment) {
      pending.push(segment);
    },
    async flush() {
      let last: { txid: number; key: string; sha256: string } | undefined;
      while (pending.length > 0) {
        const next = pending[0];
        const body = next.body;
        // History hook: signed when a signing key is set.
        const metadata = history?.signed
          ? history.sign(next.key, {
            ...next.metadata,
            sha256: body instanceof Uint8Array ? sha256Hex(body) : body.sha256,
          })
          : next.metadata;
        const written = await limiter.run(() =>
          asStorage(() =>
            body instanceof Uint8Array
              ? putBytesObject(storage, next.key, body, metadata)
              : putFileObject(storage, next.key, body.path, metadata)
          )
        );
        pending.shift();
        if (!(body instanceof Uint8Array)) await Deno.remove(body.path).catch(() => {});
        stats.bytesUploaded += written.size;
        stats.objectsUploaded++;
        shippedTxid = next.txidLast;
        last = { txid: next.txidLast, key: next.key, sha256: written.sha256 };
      }
      // History hook: the head follows each shipped batch.
      if (last && history) await asStorage(() => history.advance(last!));
      return true;
    },
    get pendingCount() {
      return pending.length;
    },
    get oldestSeenAt() {
      return pending[0]?.seenAt ?? 0;
    },
    get shippedTxid() {
      return shippedTxid;
    },
    recordUpload(size, txid) {
      stats.bytesUploaded += size;
      stats.objectsUploaded++;
      shippedTxid = txid;
    },
    stats,
  };
}
