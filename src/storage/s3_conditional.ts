/**
 * Small objects read with their ETag and written under a condition (`If-None-Match: *`,
 * `If-Match`): what the lease and the head of a history are moved with. A write refused by its
 * condition is an answer (`{ written: false }`), not an error.
 * @module
 */
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import { sha256Hex } from "../support/hash.ts";
import { errorContext, fullKey, type S3Bucket } from "./s3_client.ts";
import { isConditionRefused, isNotFound, toStorageError } from "./s3_errors.ts";
import type { ConditionalWrite, TaggedObject } from "./storage.ts";
import { sameBytes } from "../support/bytes.ts";

/** Reads a small object whole with its ETag, or `null` when it does not exist. */
export async function readTagged(s3: S3Bucket, key: string): Promise<TaggedObject | null> {
  try {
    const out = await s3.client.send(
      new GetObjectCommand({ Bucket: s3.bucket, Key: fullKey(s3, key) }),
    );
    const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
    return { bytes, etag: out.ETag ?? "", lastModified: out.LastModified };
  } catch (err) {
    if (isNotFound(err)) return null;
    throw toStorageError(err, errorContext(s3, `get "${key}"`));
  }
}

/** One small PUT with a condition; a refusal is an answer, not an error. */
async function putConditional(
  s3: S3Bucket,
  key: string,
  bytes: Uint8Array,
  condition: { IfNoneMatch: "*" } | { IfMatch: string },
): Promise<ConditionalWrite> {
  const checksum = Buffer.from(sha256Hex(bytes), "hex").toString("base64");
  try {
    const out = await s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: fullKey(s3, key),
        Body: bytes,
        ContentLength: bytes.byteLength,
        ContentType: "application/json",
        ...s3.encryption,
        ChecksumSHA256: checksum,
        ...condition,
      }),
    );
    return { written: true, etag: out.ETag ?? "" };
  } catch (err) {
    if (!isConditionRefused(err)) {
      throw toStorageError(err, errorContext(s3, `conditional put "${key}"`));
    }
    // The SDK retries a request whose answer was lost: the first attempt may have written
    // these very bytes (each head and lease body is unique), which the retry then sees.
    const now = await readTagged(s3, key);
    if (now && sameBytes(now.bytes, bytes)) return { written: true, etag: now.etag };
    return { written: false };
  }
}

/** Writes a small object only when no object has the key (`If-None-Match: *`). */
export function createIfAbsent(
  s3: S3Bucket,
  key: string,
  bytes: Uint8Array,
): Promise<ConditionalWrite> {
  return putConditional(s3, key, bytes, { IfNoneMatch: "*" });
}

/** Replaces a small object only when its current ETag is `etag` (`If-Match`). */
export function replaceIfMatch(
  s3: S3Bucket,
  key: string,
  bytes: Uint8Array,
  etag: string,
): Promise<ConditionalWrite> {
  return putConditional(s3, key, bytes, { IfMatch: etag });
}
