/**
 * S3 multipart upload driven by hand, so that each part can be sent again on its own.
 *
 * Parts are read from the body into reused buffers and sent with their SHA256
 * (`x-amz-checksum-sha256`), which the server checks on arrival: a part damaged in transit is
 * rejected and sent again from the same buffer, up to {@link transferAttempts} times, with
 * backoff. The whole body is hashed as it is read (unless the caller already proved the part
 * digests, see {@link PartDigests}) and the upload is completed only when it matches the
 * promised SHA256; otherwise it is aborted, so no object with wrong bytes ever appears.
 * @module
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import type { WalsyncError } from "../errors.ts";
import type { BodySource, PutOptions } from "../storage.ts";
import { backoff, reportRetry, transferAttempts } from "./retry.ts";

const MiB = 1024 * 1024;
/** Default part size; larger bodies grow it so that no upload needs more than 10,000 parts. */
export const defaultPartSize = 16 * MiB;
const maxParts = 10_000;

/** The part size used for a body of `size` bytes. */
export function partSizeFor(size: number): number {
  return Math.max(defaultPartSize, Math.ceil(size / (maxParts - 1)));
}

/**
 * SHA256 of each part, computed by the caller in the same pass as the body's digest: the
 * server then checks every part against digests taken before the upload started, which
 * proves the uploaded bytes are the digested ones, and the body is not hashed again here.
 */
export interface PartDigests {
  /** Part size the digests were computed for (must equal `partSizeFor(size)`). */
  partSize: number;
  /** Hex SHA256 of each part, in order. */
  sha256: string[];
}

/** What the upload needs from the storage it belongs to. */
export interface MultipartTarget {
  client: S3Client;
  bucket: string;
  /** Full key, prefix included. */
  fullKey: string;
  /** Key for messages (without the prefix). */
  key: string;
  /** Server-side encryption parameters. */
  encryption: Record<string, string>;
  /** Turns an SDK error into a one-line storage error. */
  fail(err: unknown, action: string): WalsyncError;
  /** Whether a failed part is worth sending again. */
  retryable(err: unknown): boolean;
  /** A short reason for the retry's log line. */
  reason(err: unknown): string;
}

/** How the bytes that streamed differ from what was promised. */
export interface Mismatch {
  expected: string;
  actual: string;
}

/** Reads exactly `buf.byteLength` bytes (fewer only at the end) from a reader with a carry-over. */
async function fill(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  buf: Uint8Array,
  carry: { bytes?: Uint8Array },
): Promise<number> {
  let filled = 0;
  while (filled < buf.byteLength) {
    let chunk = carry.bytes;
    carry.bytes = undefined;
    if (!chunk) {
      const next = await reader.read();
      if (next.done) break;
      chunk = next.value;
    }
    const take = Math.min(chunk.byteLength, buf.byteLength - filled);
    buf.set(chunk.subarray(0, take), filled);
    filled += take;
    if (take < chunk.byteLength) carry.bytes = chunk.subarray(take);
  }
  return filled;
}

/**
 * Uploads `body` as a multipart object; returns a mismatch (after aborting) when the bytes
 * did not match `put.sha256`/`put.size`.
 */
export async function uploadMultipart(
  target: MultipartTarget,
  body: BodySource,
  put: PutOptions,
  options: { queueSize: number; parts?: PartDigests },
): Promise<Mismatch | undefined> {
  const partSize = partSizeFor(put.size);
  const given = options.parts?.partSize === partSize ? options.parts : undefined;
  const { client, bucket, fullKey } = target;
  let uploadId: string | undefined;
  // Opened first so that every way out below closes it (a file behind it, say).
  const reader = body().getReader();
  let readerDone = false;
  try {
    const created = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: fullKey,
        Metadata: put.metadata,
        ...target.encryption,
        ChecksumAlgorithm: "SHA256",
      }),
    );
    uploadId = created.UploadId!;
  } catch (err) {
    reader.cancel().catch(() => {});
    throw target.fail(err, `multipart put "${target.key}"`);
  }
  const inFlight = new Set<Promise<void>>();
  try {
    const whole: Hash | undefined = given ? undefined : createHash("sha256");
    const parts: { PartNumber: number; ETag: string; ChecksumSHA256: string }[] = [];
    const spare: Uint8Array[] = [];
    const carry: { bytes?: Uint8Array } = {};
    let total = 0;
    let failed: unknown;
    for (let number = 1;; number++) {
      const buf = spare.pop() ?? new Uint8Array(partSize);
      const n = await fill(reader, buf, carry);
      if (n === 0 && number > 1) break;
      const bytes = buf.subarray(0, n);
      total += n;
      if (total > put.size) {
        return await abortWith(target, uploadId, {
          expected: `${put.sha256} (${put.size} bytes)`,
          actual: `more than ${put.size} bytes`,
        });
      }
      whole?.update(bytes);
      const digest = given ? given.sha256[number - 1] : createHash("sha256").update(bytes).digest(
        "hex",
      );
      if (digest === undefined) {
        return await abortWith(target, uploadId, {
          expected: `${put.sha256} (${put.size} bytes)`,
          actual: `more than ${given!.sha256.length} parts`,
        });
      }
      const checksum = Buffer.from(digest, "hex").toString("base64");
      const task = sendPart(target, uploadId, number, bytes, checksum).then((etag) => {
        parts.push({ PartNumber: number, ETag: etag, ChecksumSHA256: checksum });
        spare.push(buf);
      }, (err) => {
        failed ??= err;
      });
      inFlight.add(task);
      task.finally(() => inFlight.delete(task));
      if (inFlight.size >= options.queueSize) await Promise.race(inFlight);
      if (failed !== undefined) throw failed;
      if (n < partSize) break;
    }
    readerDone = true;
    await Promise.all(inFlight);
    if (failed !== undefined) throw failed;
    const actual = whole?.digest("hex") ?? put.sha256;
    if (actual !== put.sha256 || total !== put.size) {
      return await abortWith(target, uploadId, {
        expected: `${put.sha256} (${put.size} bytes)`,
        actual: `${actual} (${total} bytes)`,
      });
    }
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    try {
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: fullKey,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (err) {
      throw target.fail(err, `multipart put "${target.key}"`);
    }
    uploadId = undefined;
    return undefined;
  } finally {
    if (!readerDone) reader.cancel().catch(() => {});
    await Promise.allSettled(inFlight);
    if (uploadId !== undefined) await abort(target, uploadId);
  }
}

/** Sends one part; a part the server rejects (damaged on the way) or a dropped connection is sent again. */
async function sendPart(
  target: MultipartTarget,
  uploadId: string,
  number: number,
  bytes: Uint8Array,
  checksum: string,
): Promise<string> {
  for (let attempt = 1;; attempt++) {
    try {
      const out = await target.client.send(
        new UploadPartCommand({
          Bucket: target.bucket,
          Key: target.fullKey,
          UploadId: uploadId,
          PartNumber: number,
          Body: bytes,
          ContentLength: bytes.byteLength,
          ChecksumSHA256: checksum,
        }),
      );
      return out.ETag!;
    } catch (err) {
      if (attempt >= transferAttempts || !target.retryable(err)) {
        throw target.fail(err, `upload of part ${number} of "${target.key}"`);
      }
      reportRetry({
        op: "upload part",
        key: `${target.key} part ${number}`,
        attempt: attempt + 1,
        of: transferAttempts,
        reason: target.reason(err),
      });
      await backoff(attempt + 1);
    }
  }
}

async function abort(target: MultipartTarget, uploadId: string): Promise<void> {
  await target.client.send(
    new AbortMultipartUploadCommand({
      Bucket: target.bucket,
      Key: target.fullKey,
      UploadId: uploadId,
    }),
  ).catch(() => {});
}

async function abortWith(
  target: MultipartTarget,
  uploadId: string,
  mismatch: Mismatch,
): Promise<Mismatch> {
  await abort(target, uploadId);
  return mismatch;
}
