/**
 * S3 multipart upload driven by hand, so that each part can be sent again on its own.
 *
 * Parts are read from the body into reused buffers and sent with a checksum the server checks
 * on arrival: a part damaged in transit is rejected and sent again from the same buffer, up to
 * {@link transferAttempts} times, with backoff. With part checksums from the caller's pre-pass
 * ({@link PartDigests}, CRC32) nothing is hashed here: the server proves each part equals what
 * the pre-pass digested. Without them each part is sent with its SHA256 and the whole body is
 * hashed as it is read; the upload is completed only when it matches the promised SHA256,
 * otherwise it is aborted, so no object with wrong bytes ever appears.
 * @module
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { createHash, type Hash } from "node:crypto";
import type { WalsyncError } from "../../support/errors.ts";
import type { BodySource, PutOptions } from "../storage.ts";
import { type PartDigests, partSizeFor } from "./parts.ts";
import { backoff, reportRetry, transferAttempts } from "./retry.ts";

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
  /**
   * Sends a part some other way than the SDK (Deno's fetch); returns its ETag. Errors are
   * shaped like the SDK's so that `retryable` and `fail` understand them.
   */
  sendPart?: (
    uploadId: string,
    partNumber: number,
    bytes: Uint8Array,
    checksum: PartChecksum,
  ) => Promise<string>;
}

/** A part's checksum: its algorithm and its value as S3 writes it (base64). */
export interface PartChecksum {
  algorithm: "CRC32" | "SHA256";
  value: string;
}

/** How the bytes that streamed differ from what was promised. */
export interface Mismatch {
  expected: string;
  actual: string;
}

/** Reads a body part by part: straight into the part buffer when the body is a byte stream. */
interface PartReader {
  /**
   * Fills `buf` (fewer bytes only at the end of the body); returns the buffer holding them
   * (a BYOB read hands back the same memory under a new object) and the byte count.
   */
  fill(buf: Uint8Array): Promise<{ buf: Uint8Array; n: number }>;
  cancel(): void;
}

function partReader(stream: ReadableStream<Uint8Array>): PartReader {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // not a byte stream: copy its chunks
  }
  if (byob) {
    const reader = byob;
    return {
      async fill(buf) {
        // Each read detaches the buffer it was given; its bytes come back in a new object.
        const size = buf.byteLength;
        let view = buf;
        let n = 0;
        while (n < size) {
          const next = await reader.read(new Uint8Array(view.buffer, n, size - n));
          if (next.value) view = new Uint8Array(next.value.buffer as ArrayBuffer, 0, size);
          if (next.done) break;
          n += next.value!.byteLength;
        }
        return { buf: view, n };
      },
      cancel: () => void reader.cancel().catch(() => {}),
    };
  }
  const reader = stream.getReader();
  let carry: Uint8Array | undefined;
  return {
    async fill(buf) {
      let n = 0;
      while (n < buf.byteLength) {
        let chunk = carry;
        carry = undefined;
        if (!chunk) {
          const next = await reader.read();
          if (next.done) break;
          chunk = next.value;
        }
        const take = Math.min(chunk.byteLength, buf.byteLength - n);
        buf.set(chunk.subarray(0, take), n);
        n += take;
        if (take < chunk.byteLength) carry = chunk.subarray(take);
      }
      return { buf, n };
    },
    cancel: () => void reader.cancel().catch(() => {}),
  };
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
  const algorithm = given ? "CRC32" : "SHA256";
  const { client, bucket, fullKey } = target;
  let uploadId: string | undefined;
  // Opened first so that every way out below closes it (a file behind it, say).
  const reader = partReader(body());
  let readerDone = false;
  try {
    const created = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: fullKey,
        Metadata: put.metadata,
        ...target.encryption,
        ChecksumAlgorithm: algorithm,
      }),
    );
    uploadId = created.UploadId!;
  } catch (err) {
    reader.cancel();
    throw target.fail(err, `multipart put "${target.key}"`);
  }
  const inFlight = new Set<Promise<void>>();
  try {
    const whole: Hash | undefined = given ? undefined : createHash("sha256");
    const parts: {
      PartNumber: number;
      ETag: string;
      ChecksumSHA256?: string;
      ChecksumCRC32?: string;
    }[] = [];
    const spare: Uint8Array[] = [];
    let total = 0;
    let failed: unknown;
    for (let number = 1;; number++) {
      const { buf, n } = await reader.fill(spare.pop() ?? new Uint8Array(partSize));
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
      const value = given
        ? given.crc32[number - 1]
        : createHash("sha256").update(bytes).digest("base64");
      if (value === undefined) {
        return await abortWith(target, uploadId, {
          expected: `${put.sha256} (${put.size} bytes)`,
          actual: `more than ${given!.crc32.length} parts`,
        });
      }
      const checksum: PartChecksum = { algorithm, value };
      const task = sendPart(target, uploadId, number, bytes, checksum).then((etag) => {
        parts.push({ PartNumber: number, ETag: etag, [`Checksum${algorithm}`]: value });
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
    if (
      actual !== put.sha256 || total !== put.size || (given && given.crc32.length !== parts.length)
    ) {
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
    if (!readerDone) reader.cancel();
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
  checksum: PartChecksum,
): Promise<string> {
  for (let attempt = 1;; attempt++) {
    try {
      if (target.sendPart) return await target.sendPart(uploadId, number, bytes, checksum);
      const out = await target.client.send(
        new UploadPartCommand({
          Bucket: target.bucket,
          Key: target.fullKey,
          UploadId: uploadId,
          PartNumber: number,
          Body: bytes,
          ContentLength: bytes.byteLength,
          [`Checksum${checksum.algorithm}`]: checksum.value,
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
