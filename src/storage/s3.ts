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
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { integrityError, WalsyncError } from "../support/errors.ts";
import type { BodySource, Metadata, ObjectInfo, PutOptions, Storage } from "./storage.ts";
import { type RangeSource, ResumableError } from "./transfer/download.ts";
import { fetchEnabled, objectUrl, readRangeInto, signedPut } from "./transfer/s3_fetch.ts";
import { type MultipartTarget, uploadMultipart } from "./transfer/multipart.ts";
import { multipartThreshold } from "./transfer/parts.ts";
import { streamedPut, streamedPutMax } from "./transfer/streamed_put.ts";
import { backoff, reportRetry } from "./transfer/retry.ts";
import {
  type ErrorContext,
  isNotFound,
  isRetryable,
  networkCode,
  networkReasons,
  retryReasonOf,
  toStorageError,
} from "./s3_errors.ts";
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

/** S3 metadata comes back with whatever case the server used; Walsync keys are lower-case. */
function lowerKeys(metadata: Record<string, string> | undefined): Metadata {
  const out: Metadata = {};
  for (const [k, v] of Object.entries(metadata ?? {})) out[k.toLowerCase()] = v;
  return out;
}

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

  /** A range through the SDK (when the fetch path is off or cannot address the bucket). */
  async function readRangeSdk(
    key: string,
    start: number,
    into: Uint8Array,
    at: { filled: number },
  ): Promise<void> {
    const end = start + into.byteLength;
    const out = await client.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: fullKey(key),
        Range: `bytes=${start + at.filled}-${end - 1}`,
      }),
    );
    const body = out.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
    if (out.ContentLength !== end - start - at.filled || body === undefined) {
      body?.destroy?.();
      throw integrityError(
        key,
        "storage answered a range request with another length",
        `${end - start - at.filled} bytes`,
        `${out.ContentLength ?? 0} bytes`,
      );
    }
    // The SDK's Node body is read directly (no web-stream wrapper per chunk); a range is at
    // most a few MiB, so reading ahead without backpressure stays bounded.
    try {
      for await (const chunk of body) {
        if (at.filled + chunk.byteLength > into.byteLength) {
          throw integrityError(key, "storage sent more bytes than the range asked for");
        }
        into.set(chunk, at.filled);
        at.filled += chunk.byteLength;
      }
    } catch (err) {
      if (err instanceof WalsyncError) throw err;
      const code = networkCode(err);
      throw new ResumableError(code ? networkReasons[code] ?? code : "connection dropped");
    }
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

    async get(key: string) {
      let out;
      try {
        out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: fullKey(key) }));
      } catch (err) {
        if (isNotFound(err)) throw integrityError(key, "object is missing");
        throw toStorageError(err, context(`get "${key}"`));
      }
      const sdkBody = out.Body as
        | { transformToWebStream(): ReadableStream<Uint8Array> }
        | undefined;
      const raw: ReadableStream<Uint8Array> = sdkBody
        ? sdkBody.transformToWebStream()
        : new ReadableStream({ start: (c) => c.close() });
      // Errors while reading (a dropped connection) get the same one-line form as the rest.
      const reader = raw.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } catch (err) {
            controller.error(toStorageError(err, context(`read of "${key}"`)));
          }
        },
        cancel(reason) {
          return reader.cancel(reason);
        },
      }, { highWaterMark: 0 });
      return {
        body,
        info: {
          key,
          size: out.ContentLength ?? 0,
          metadata: lowerKeys(out.Metadata),
          lastModified: out.LastModified,
        },
      };
    },

    async readRangeInto(key: string, start: number, into: Uint8Array, at: { filled: number }) {
      const url = fetchEnabled() ? objectUrl(fetchTarget, fullKey(key)) : null;
      try {
        if (url) {
          await readRangeInto(fetchTarget, url, start, into, at, (why) => new ResumableError(why));
        } else await readRangeSdk(key, start, into, at);
      } catch (err) {
        if (err instanceof ResumableError || err instanceof WalsyncError) throw err;
        if (isNotFound(err)) throw integrityError(key, "object is missing");
        const final = toStorageError(err, context(`get "${key}"`));
        if (isRetryable(err)) throw new ResumableError(retryReasonOf(err), final);
        throw final;
      }
    },

    async head(key: string): Promise<ObjectInfo | null> {
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: fullKey(key) }));
        return {
          key,
          size: out.ContentLength ?? 0,
          metadata: lowerKeys(out.Metadata),
          lastModified: out.LastModified,
        };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw toStorageError(err, context(`head "${key}"`));
      }
    },

    list: (listPrefix) => listObjects(s3, listPrefix),

    delete: (keys) => deleteKeys(s3, keys),

    readTagged: (key) => readTagged(s3, key),

    createIfAbsent: (key, bytes) => createIfAbsent(s3, key, bytes),

    replaceIfMatch: (key, bytes, etag) => replaceIfMatch(s3, key, bytes, etag),

    check: () => checkBucket(s3),

    close: () => closeS3Bucket(s3),
  };
}
