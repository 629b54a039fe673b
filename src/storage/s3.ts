/**
 * S3-compatible storage (AWS S3, MinIO, R2, Tigris, B2) on `@aws-sdk/client-s3`.
 *
 * Every upload streams through a SHA256 hasher and a guard that holds back the final chunk
 * until the bytes are proven to match what the caller promised, so a source that changes
 * mid-upload never completes an object. Single PUTs also send `x-amz-checksum-sha256`, so
 * the server itself rejects bytes corrupted on the way. Errors become one-line
 * `WalsyncError`s of kind `storage`, built from error codes only, never from raw SDK text.
 *
 * This module wires the pieces into a {@link Storage}: the client and bucket
 * (`s3_client.ts`), uploads (`s3_put.ts`), reads (`s3_read.ts`), listing and deleting
 * (`s3_list.ts`), conditional writes (`s3_conditional.ts`), and what errors mean
 * (`s3_errors.ts`).
 * @module
 */
import { checkBucket, closeS3Bucket, openS3Bucket, type S3StorageOptions } from "./s3_client.ts";
import { createIfAbsent, readTagged, replaceIfMatch } from "./s3_conditional.ts";
import { deleteKeys, listObjects } from "./s3_list.ts";
import { putObject } from "./s3_put.ts";
import { getObject, headObject, readObjectRange } from "./s3_read.ts";
import type { Storage } from "./storage.ts";
import type { RangeSource } from "./transfer/download.ts";

export type { S3StorageOptions } from "./s3_client.ts";
export { bufferedPutLimit, singlePutLimit } from "./s3_put.ts";

/**
 * Opens an S3 bucket (and prefix) as storage.
 * @example
 * ```ts
 * const storage = s3Storage({ bucket: "backups", prefix: "prod", region: "eu-west-1" });
 * await storage.check(); // fails early with a one-line reason (exit 3)
 * const info = await storage.head("app.db/head");
 * storage.close();
 * ```
 */
export function s3Storage(options: S3StorageOptions): Storage & RangeSource {
  const s3 = openS3Bucket(options);
  const { bucket, prefix, endpoint, where } = s3;
  return {
    location: `s3://${bucket}${prefix ? `/${prefix}` : ""}${endpoint ? ` at ${where}` : ""}`,
    put: (key, body, put) => putObject(s3, key, body, put),
    get: (key) => getObject(s3, key),
    readRangeInto: (key, start, into, at) => readObjectRange(s3, key, start, into, at),
    head: (key) => headObject(s3, key),
    list: (listPrefix) => listObjects(s3, listPrefix),
    delete: (keys) => deleteKeys(s3, keys),
    readTagged: (key) => readTagged(s3, key),
    createIfAbsent: (key, bytes) => createIfAbsent(s3, key, bytes),
    replaceIfMatch: (key, bytes, etag) => replaceIfMatch(s3, key, bytes, etag),
    check: () => checkBucket(s3),
    close: () => closeS3Bucket(s3),
  };
}
