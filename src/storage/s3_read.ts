/**
 * Reading objects from an S3 bucket: a whole object as a stream, its size and metadata, and a
 * byte range into a caller's buffer (through the fetch path when it can address the bucket,
 * otherwise the SDK). A dropped connection mid-range is a {@link ResumableError}, so the
 * download can ask for the rest.
 * @module
 */
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { integrityError, WalsyncError } from "../support/errors.ts";
import { errorContext, fullKey, type S3Bucket } from "./s3_client.ts";
import {
  isNotFound,
  isRetryable,
  networkCode,
  networkReasons,
  retryReasonOf,
  toStorageError,
} from "./s3_errors.ts";
import type { Metadata, ObjectInfo } from "./storage.ts";
import { ResumableError } from "./transfer/download.ts";
import { fetchEnabled, objectUrl, readRangeInto, remainingRange } from "./transfer/s3_fetch.ts";
import { directConnectionsAllowed, readRangeDirect } from "./transfer/http_range.ts";

/** S3 metadata comes back with whatever case the server used; Walsync keys are lower-case. */
function lowerKeys(metadata: Record<string, string> | undefined): Metadata {
  const out: Metadata = {};
  for (const [k, v] of Object.entries(metadata ?? {})) out[k.toLowerCase()] = v;
  return out;
}

/** Opens an object for reading; a missing object is an integrity error naming the key. */
export async function getObject(
  s3: S3Bucket,
  key: string,
): Promise<{ body: ReadableStream<Uint8Array>; info: ObjectInfo }> {
  let out;
  try {
    out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: fullKey(s3, key) }));
  } catch (err) {
    if (isNotFound(err)) throw integrityError(key, "object is missing");
    throw toStorageError(err, errorContext(s3, `get "${key}"`));
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
        controller.error(toStorageError(err, errorContext(s3, `read of "${key}"`)));
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
}

/** Size and metadata of an object, or `null` when it does not exist. */
export async function headObject(s3: S3Bucket, key: string): Promise<ObjectInfo | null> {
  try {
    const out = await s3.client.send(
      new HeadObjectCommand({ Bucket: s3.bucket, Key: fullKey(s3, key) }),
    );
    return {
      key,
      size: out.ContentLength ?? 0,
      metadata: lowerKeys(out.Metadata),
      lastModified: out.LastModified,
    };
  } catch (err) {
    if (isNotFound(err)) return null;
    throw toStorageError(err, errorContext(s3, `head "${key}"`));
  }
}

/** A range through the SDK (when the fetch path is off or cannot address the bucket). */
async function readRangeSdk(
  s3: S3Bucket,
  key: string,
  start: number,
  into: Uint8Array,
  at: { filled: number },
): Promise<void> {
  const end = start + into.byteLength;
  const out = await s3.client.send(
    new GetObjectCommand({
      Bucket: s3.bucket,
      Key: fullKey(s3, key),
      Range: remainingRange(start, into, at),
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

/**
 * Reads bytes `start + at.filled` up to `start + into.byteLength` of an object into
 * `into[at.filled..]`, advancing `at.filled` as bytes arrive. A transient failure is a
 * {@link ResumableError} carrying the storage error it would end in.
 */
export async function readObjectRange(
  s3: S3Bucket,
  key: string,
  start: number,
  into: Uint8Array,
  at: { filled: number },
): Promise<void> {
  const url = fetchEnabled() ? objectUrl(s3.fetchTarget, fullKey(s3, key)) : null;
  try {
    const onDrop = (why: string) => new ResumableError(why);
    if (url && directConnectionsAllowed()) {
      await readRangeDirect(s3.connections, s3.fetchTarget, url, start, into, at, onDrop);
    } else if (url) await readRangeInto(s3.fetchTarget, url, start, into, at, onDrop);
    else await readRangeSdk(s3, key, start, into, at);
  } catch (err) {
    if (err instanceof ResumableError || err instanceof WalsyncError) throw err;
    if (isNotFound(err)) throw integrityError(key, "object is missing");
    const final = toStorageError(err, errorContext(s3, `get "${key}"`));
    if (isRetryable(err)) throw new ResumableError(retryReasonOf(err), final);
    throw final;
  }
}
