/**
 * Uploads to an S3 bucket, by size: a small body is read, checked and sent from memory; a
 * larger one is streamed through the guard of `s3_body_guard.ts` in one PUT; a body over
 * {@link singlePutLimit} goes as one streamed PUT with its pre-pass CRC32 when it comes with
 * part checksums and the fetch path can take it, otherwise as a multipart upload. Every PUT
 * carries a checksum the server verifies, and is sent again (with a freshly opened body) when
 * it fails in a way another try can fix.
 * @module
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { integrityError } from "../support/errors.ts";
import { guardedBody, type Mismatch, readChecked, settle } from "./s3_body_guard.ts";
import { errorContext, fullKey, type S3Bucket } from "./s3_client.ts";
import { isRetryable, retryReasonOf, toStorageError } from "./s3_errors.ts";
import { deleteKeys } from "./s3_list.ts";
import type { BodySource, PutOptions } from "./storage.ts";
import { type MultipartTarget, uploadMultipart } from "./transfer/multipart.ts";
import { multipartThreshold } from "./transfer/parts.ts";
import { backoff, reportRetry } from "./transfer/retry.ts";
import { fetchEnabled, objectUrl, signedPut } from "./transfer/s3_fetch.ts";
import { streamedPut, streamedPutMax } from "./transfer/streamed_put.ts";

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
 * After a failed upload attempt: throws the storage error when it was the last attempt or
 * another would not help; otherwise logs the retry and waits before the next one.
 */
async function afterFailedPut(
  s3: S3Bucket,
  key: string,
  attempt: number,
  err: unknown,
): Promise<void> {
  if (attempt >= putAttempts || !isRetryable(err)) {
    throw toStorageError(err, errorContext(s3, `put "${key}"`));
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
  s3: S3Bucket,
  key: string,
  url: URL,
  body: BodySource,
  put: PutOptions,
  crc32: string,
): Promise<Mismatch | undefined> {
  const headers: Record<string, string> = { "x-amz-checksum-crc32": crc32 };
  for (const [name, value] of Object.entries(put.metadata)) headers[`x-amz-meta-${name}`] = value;
  const { ServerSideEncryption, SSEKMSKeyId } = s3.encryption;
  if (ServerSideEncryption) headers["x-amz-server-side-encryption"] = ServerSideEncryption;
  if (SSEKMSKeyId) headers["x-amz-server-side-encryption-aws-kms-key-id"] = SSEKMSKeyId;
  for (let attempt = 1;; attempt++) {
    try {
      const wrong = await streamedPut(s3.fetchTarget, s3.agents, url, headers, body, put.size);
      if (wrong === undefined) return undefined;
      return {
        expected: `${put.sha256} (${put.size} bytes)`,
        actual: wrong === "long" ? `more than ${put.size} bytes` : `fewer than ${put.size} bytes`,
      };
    } catch (err) {
      if (err instanceof Error && !("$metadata" in err)) throw err; // the source failed
      await afterFailedPut(s3, key, attempt, err);
    }
  }
}

/**
 * Sends multipart parts through node:http (no SDK payload hash for the signature, no Node
 * stream); undefined when the fetch path cannot address the bucket.
 */
function partSender(s3: S3Bucket, key: string): MultipartTarget["sendPart"] {
  const url = objectUrl(s3.fetchTarget, fullKey(s3, key));
  if (url === null) return undefined;
  return async (uploadId, partNumber, bytes, checksum) => {
    const partUrl = new URL(url);
    partUrl.searchParams.set("partNumber", String(partNumber));
    partUrl.searchParams.set("uploadId", uploadId);
    const headers = await signedPut(s3.fetchTarget, s3.agents, partUrl, {
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

/** One PUT of a small body sent from memory, checked before it goes; retried as it is. */
async function putBuffered(
  s3: S3Bucket,
  key: string,
  body: BodySource,
  put: PutOptions,
): Promise<Mismatch | undefined> {
  const read = await readChecked(body, put);
  if ("mismatch" in read) return read.mismatch;
  const checksum = Buffer.from(put.sha256, "hex").toString("base64");
  for (let attempt = 1;; attempt++) {
    try {
      await s3.client.send(
        new PutObjectCommand({
          Bucket: s3.bucket,
          Key: fullKey(s3, key),
          Body: read.bytes,
          ContentLength: put.size,
          Metadata: put.metadata,
          ...s3.encryption,
          ChecksumSHA256: checksum,
        }),
      );
      return undefined;
    } catch (err) {
      await afterFailedPut(s3, key, attempt, err);
    }
  }
}

/** One PUT with the server checking the SHA256; retried with a fresh body on transient failures. */
async function putSingle(
  s3: S3Bucket,
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
      await s3.client.send(
        new PutObjectCommand({
          Bucket: s3.bucket,
          Key: fullKey(s3, key),
          Body: nodeBody,
          ContentLength: put.size,
          Metadata: put.metadata,
          ...s3.encryption,
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
      await afterFailedPut(s3, key, attempt, err);
    }
  }
}

/**
 * Multipart upload in 16 MiB parts, 4 in flight, each part checked by the server and sent
 * again when it arrives damaged (src/storage/transfer/multipart.ts): memory stays bounded.
 */
function putMultipart(
  s3: S3Bucket,
  key: string,
  body: BodySource,
  put: PutOptions,
): Promise<Mismatch | undefined> {
  return uploadMultipart(
    {
      client: s3.client,
      bucket: s3.bucket,
      fullKey: fullKey(s3, key),
      key,
      encryption: s3.encryption,
      fail: (err, action) => toStorageError(err, errorContext(s3, action)),
      retryable: isRetryable,
      reason: retryReasonOf,
      sendPart: fetchEnabled() ? partSender(s3, key) : undefined,
    },
    body,
    put,
    { queueSize, parts: put.parts },
  );
}

/**
 * Uploads an object, replacing any object of the same key. A body that does not match its
 * promised size and SHA256 leaves no object under the key and is an integrity error.
 */
export async function putObject(
  s3: S3Bucket,
  key: string,
  body: BodySource,
  put: PutOptions,
): Promise<void> {
  const streamUrl = put.parts && put.size > singlePutLimit && put.size <= streamedPutMax() &&
      fetchEnabled()
    ? objectUrl(s3.fetchTarget, fullKey(s3, key))
    : null;
  const mismatch = streamUrl
    ? await putStreamed(s3, key, streamUrl, body, put, put.parts!.wholeCrc32)
    : put.size > singlePutLimit
    ? await putMultipart(s3, key, body, put)
    : put.size <= bufferedPutLimit
    ? await putBuffered(s3, key, body, put)
    : await putSingle(s3, key, body, put);
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
}
