/**
 * The upload queue of one database: sealed segments wait here, oldest first, and go up in
 * that order (a segment's `prevSha256` names the one before it, so order is the chain).
 * @module
 */
import { putBytesObject } from "../object.ts";
import type { Metadata, Storage } from "../storage.ts";
import type { Limiter } from "./locks.ts";

/** A segment read from the WAL and sealed, waiting for its upload; uploads keep this order. */
export interface SealedSegment {
  /** Object key. */
  key: string;
  /** Encoded body (compressed frames). */
  body: Uint8Array;
  /** Object metadata. */
  metadata: Metadata;
  /** Last txid in the segment. */
  txidLast: number;
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
  /** Last txid known to be in storage. */
  readonly shippedTxid: number | undefined;
  /** Records an object uploaded outside the queue (a snapshot) up to `txid`. */
  recordUpload(size: number, txid: number): void;
  /** Totals since start. */
  readonly stats: Readonly<UploadStats>;
}

/** Creates the upload queue of one database on `storage`, uploads bounded by `limiter`. */
export function createUploader(storage: Storage, limiter: Limiter): Uploader {
  const pending: SealedSegment[] = [];
  const stats: UploadStats = { bytesUploaded: 0, objectsUploaded: 0 };
  let shippedTxid: number | undefined;
  return {
    push(segment) {
      pending.push(segment);
    },
    async flush() {
      while (pending.length > 0) {
        const next = pending[0];
        const written = await limiter.run(() =>
          putBytesObject(storage, next.key, next.body, next.metadata)
        );
        pending.shift();
        stats.bytesUploaded += written.size;
        stats.objectsUploaded++;
        shippedTxid = next.txidLast;
      }
      return true;
    },
    get pendingCount() {
      return pending.length;
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
