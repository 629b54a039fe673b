/**
 * S3-compatible storage (AWS S3, MinIO, R2, Tigris, B2) on `@aws-sdk/client-s3`.
 *
 * Every upload streams through a SHA256 hasher and a guard that holds back the final chunk
 * until the bytes are proven to match what the caller promised, so a source that changes
 * mid-upload never completes an object. Single PUTs also send `x-amz-checksum-sha256`, so
 * the server itself rejects bytes corrupted on the way. Errors become one-line
 * `WalsyncError`s of kind `storage`, built from error codes only, never from raw SDK text.
 * @module
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { integrityError } from "../support/errors.ts";
import type { BodySource, PutOptions, Storage } from "./storage.ts";
import type { RangeSource } from "./transfer/download.ts";
import { fetchEnabled, objectUrl, signedPut } from "./transfer/s3_fetch.ts";
import { type MultipartTarget, uploadMultipart } from "./transfer/multipart.ts";
import { multipartThreshold } from "./transfer/parts.ts";
import { streamedPut, streamedPutMax } from "./transfer/streamed_put.ts";
import { backoff, reportRetry } from "./transfer/retry.ts";
import { type ErrorContext, isRetryable, retryReasonOf, toStorageError } from "./s3_errors.ts";
import { guardedBody, type Mismatch, readChecked, settle } from "./s3_body_guard.ts";
import {
  checkBucket,
  closeS3Bucket,
  errorContext,
  openS3Bucket,
  type S3StorageOptions,
} from "./s3_client.ts";
import { deleteKeys, listObjects } from "./s3_list.ts";
import { createIfAbsent, readTagged, replaceIfMatch } from "./s3_conditional.ts";
import { getObject, headObject, readObjectRange } from "./s3_read.ts";

export type { S3StorageOptions } from "./s3_client.ts";

const MiB = 1024 * 1024;
/** Bodies up to this size go up in one PUT; larger ones use multipart. */
export const singlePutLimit = multipartThreshold;
/**
 * Bodies up to this size are read into memory, checked, and sent as bytes: a WAL segment is
 * usually a few KiB, and a Node stream wrapped around a web stream costs more than the body.
 */
export const bufferedPutLimit = 1 * MiB;
const queueSize = 4;
// The SDK never retries a streamed body (it cannot rewind it); put() reopens the body itself.
const putAttempts = 3;

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
  const { client, bucket, prefix, base, endpoint, where, encryption, fetchTarget, agents } = s3;
  const fullKey = (key: string): string => base + key;

  /**
   * After a failed upload attempt: throws the storage error when it was the last attempt or
   * another would not help; otherwise logs the retry and waits before the next one.
   */
  async function afterFailedPut(key: string, attempt: number, err: unknown): Promise<void> {
    if (attempt >= putAttempts || !isRetryable(err)) {
      throw toStorageError(err, context(`put "${key}"`));
    }
    reportRetry({
      op: "upload",
      key,
      attempt: attempt + 1,
      of: putAttempts,
      reason: retryReasonOf(err),
    });
    await backoff(attempt + 1);
  }

  /**
   * One streamed PUT of a large body with its pre-pass CRC32, sent again whole (bounded, with
   * backoff) when the server rejects it as damaged or the connection fails.
   */
  async function putStreamed(
    key: string,
    url: URL,
    body: BodySource,
    put: PutOptions,
    crc32: string,
  ): Promise<Mismatch | undefined> {
    const headers: Record<string, string> = { "x-amz-checksum-crc32": crc32 };
    for (const [name, value] of Object.entries(put.metadata)) headers[`x-amz-meta-${name}`] = value;
    if (options.sse) headers["x-amz-server-side-encryption"] = options.sse;
    if (options.sse === "aws:kms" && options.sseKmsKeyId) {
      headers["x-amz-server-side-encryption-aws-kms-key-id"] = options.sseKmsKeyId;
    }
    for (let attempt = 1;; attempt++) {
      try {
        const wrong = await streamedPut(fetchTarget, agents, url, headers, body, put.size);
        if (wrong === undefined) return undefined;
        return {
          expected: `${put.sha256} (${put.size} bytes)`,
          actual: wrong === "long" ? `more than ${put.size} bytes` : `fewer than ${put.size} bytes`,
        };
      } catch (err) {
        if (err instanceof Error && !("$metadata" in err)) throw err; // the source failed
        await afterFailedPut(key, attempt, err);
      }
    }
  }

  /**
   * Sends multipart parts through node:http (no SDK payload hash for the signature, no Node
   * stream); undefined when the fetch path cannot address the bucket.
   */
  function partSender(key: string): MultipartTarget["sendPart"] {
    const url = objectUrl(fetchTarget, fullKey(key));
    if (url === null) return undefined;
    return async (uploadId, partNumber, bytes, checksum) => {
      const partUrl = new URL(url);
      partUrl.searchParams.set("partNumber", String(partNumber));
      partUrl.searchParams.set("uploadId", uploadId);
      const headers = await signedPut(fetchTarget, agents, partUrl, {
        "content-length": String(bytes.byteLength),
        [`x-amz-checksum-${checksum.algorithm.toLowerCase()}`]: checksum.value,
      }, bytes);
      const etag = headers.etag;
      if (typeof etag !== "string") {
        throw { name: "MissingETag", message: "no ETag", $metadata: {} };
      }
      return etag;
    };
  }

  const context = (action: string): ErrorContext => errorContext(s3, action);

  /** One PUT of a small body sent from memory, checked before it goes; retried as it is. */
  async function putBuffered(
    key: string,
    body: BodySource,
    put: PutOptions,
  ): Promise<Mismatch | undefined> {
    const read = await readChecked(body, put);
    if ("mismatch" in read) return read.mismatch;
    const checksum = Buffer.from(put.sha256, "hex").toString("base64");
    for (let attempt = 1;; attempt++) {
      try {
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: fullKey(key),
            Body: read.bytes,
            ContentLength: put.size,
            Metadata: put.metadata,
            ...encryption,
            ChecksumSHA256: checksum,
          }),
        );
        return undefined;
      } catch (err) {
        await afterFailedPut(key, attempt, err);
      }
    }
  }

  /** One PUT with the server checking the SHA256; retried with a fresh body on transient failures. */
  async function putSingle(
    key: string,
    body: BodySource,
    put: PutOptions,
  ): Promise<Mismatch | undefined> {
    const checksum = Buffer.from(put.sha256, "hex").toString("base64");
    for (let attempt = 1;; attempt++) {
      const abort = new AbortController();
      const guarded = guardedBody(body, put, () => abort.abort());
      const nodeBody = Readable.fromWeb(guarded.stream as any);
      // The failure is already recorded by the guard; without a listener the stream's error
      // would surface as an uncaught exception.
      nodeBody.on("error", () => {});
      try {
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: fullKey(key),
            Body: nodeBody,
            ContentLength: put.size,
            Metadata: put.metadata,
            ...encryption,
            // AWS (BadDigest) and MinIO (XAmzContentChecksumMismatch) verify this and reject a
            // mismatching PUT. A server without checksum support may ignore or refuse the
            // header; MinIO is the tested target, so there is no fallback.
            ChecksumSHA256: checksum,
          }),
          { abortSignal: abort.signal },
        );
        return settle(guarded.failure());
      } catch (err) {
        guarded.release();
        if (guarded.failure()) return settle(guarded.failure());
        await afterFailedPut(key, attempt, err);
      }
    }
  }

  /**
   * Multipart upload in 16 MiB parts, 4 in flight, each part checked by the server and sent
   * again when it arrives damaged (src/storage/transfer/multipart.ts): memory stays bounded.
   */
  function putMultipart(
    key: string,
    body: BodySource,
    put: PutOptions,
  ): Promise<Mismatch | undefined> {
    return uploadMultipart(
      {
        client,
        bucket,
        fullKey: fullKey(key),
        key,
        encryption,
        fail: (err, action) => toStorageError(err, context(action)),
        retryable: isRetryable,
        reason: retryReasonOf,
        sendPart: fetchEnabled() ? partSender(key) : undefined,
      },
      body,
      put,
      { queueSize, parts: put.parts },
    );
  }

  return {
    location: `s3://${bucket}${prefix ? `/${prefix}` : ""}${endpoint ? ` at ${where}` : ""}`,

    async put(key: string, body: BodySource, put: PutOptions): Promise<void> {
      const streamUrl = put.parts && put.size > singlePutLimit && put.size <= streamedPutMax() &&
          fetchEnabled()
        ? objectUrl(fetchTarget, fullKey(key))
        : null;
      const mismatch = streamUrl
        ? await putStreamed(key, streamUrl, body, put, put.parts!.wholeCrc32)
        : put.size > singlePutLimit
        ? await putMultipart(key, body, put)
        : put.size <= bufferedPutLimit
        ? await putBuffered(key, body, put)
        : await putSingle(key, body, put);
      if (mismatch) {
        // The guard should have kept the object from completing; deleting makes sure no
        // wrong bytes (nor an older object under the same key) stay behind.
        await deleteKeys(s3, [key]);
        throw integrityError(
          key,
          "source changed while uploading",
          mismatch.expected,
          mismatch.actual,
        );
      }
    },

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
