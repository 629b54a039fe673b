/**
 * Checked downloads that survive damage in transit: an object is fetched in ranges, several
 * in flight, and handed to a sink in order, a slice at a time, hashed while the sink writes it
 * (on a worker over shared buffers for large objects, else slice by slice). A connection that drops in the middle of a range is resumed from the last byte
 * received with a ranged request; a body whose SHA256 or size does not match its metadata is
 * fetched again from the start, up to {@link transferAttempts} times. Damage that comes back
 * identical on the next attempt is lasting (the stored object changed): that attempt's error is
 * thrown.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { integrityError, WalsyncError } from "../../support/errors.ts";
import { openPromised, promisedIntegrity } from "../object.ts";
import { startThreadHash, type ThreadHash } from "./hash_thread.ts";
import type { ObjectInfo, Storage } from "../storage.ts";
import {
  backoff,
  reportRetry,
  resumeAttempts,
  retriesSoFar,
  retryReason,
  transferAttempts,
} from "./retry.ts";

/** A storage that can read a byte range of an object into a buffer (both built-in backends can). */
export interface RangeSource {
  /**
   * Reads bytes `[start + at.filled, start + into.byteLength)` of `key` into `into` from
   * `at.filled` on, advancing `at.filled` as bytes land. A body that stops early, or a
   * failure worth another try (a dropped connection, a busy server), is a
   * {@link ResumableError}: the caller asks again from `at.filled`. Anything else is a
   * `WalsyncError`.
   */
  readRangeInto(
    key: string,
    start: number,
    into: Uint8Array,
    at: { filled: number },
  ): Promise<void>;
}

/** A transfer that stopped early (connection cut, reset, busy server): ask again from where it stopped. */
export class ResumableError extends Error {
  /**
   * Creates one with a short reason (a network code, never raw server text) and the error to
   * report if no further attempt succeeds.
   */
  constructor(reason: string, readonly final?: Error) {
    super(reason);
    this.name = "ResumableError";
  }
}

/** Whether `storage` can read ranges. */
export function hasRanges(storage: Storage): storage is Storage & RangeSource {
  return typeof (storage as Partial<RangeSource>).readRangeInto === "function";
}

/** Where downloaded bytes go, in order. */
export interface DownloadSink {
  /** Takes the next bytes; the array may be reused once the promise settles. */
  write(bytes: Uint8Array): Promise<void>;
  /** Drops everything written so far (before a fresh attempt). */
  reset(): Promise<void>;
}

/** Options for {@link downloadVerified}. */
export interface DownloadOptions {
  /** Called with the bytes of this object received and checked so far. */
  onBytes?: (total: number) => void;
  /**
   * Bytes per ranged request (default 32 MiB). With 2 in flight, 1 GiB from a loopback MinIO
   * restored in 1.77-1.88 s against 1.92-2.03 s with 16 MiB x 3 and 1.94 s with 24 MiB x 3
   * (medians of 4, each restore after its own curl GET; docs/benchmarks.md). The buffers (one
   * per range in flight and the one being written) take 96 MiB, as with 24 MiB x 3.
   */
  rangeSize?: number;
  /** Ranged requests in flight (default 2). */
  parallel?: number;
  /**
   * Hash on a second thread (`hash_thread.ts`) while the main thread reads and writes; by
   * default for objects of 64 MiB and more.
   */
  hashOnThread?: boolean;
}

/** What a download delivered. */
export interface Downloaded {
  /** Key, size and metadata as storage reported them. */
  info: ObjectInfo;
  /** Hex SHA256 of the bytes (equal to the metadata's). */
  sha256: string;
  /** Byte count. */
  size: number;
  /** Retries and resumes this download needed. */
  retries: number;
}

const MiB = 1024 * 1024;

/** Marks an error of the body (not of the object's metadata): another attempt may succeed. */
class BodyFailure extends Error {
  constructor(readonly inner: unknown) {
    super(inner instanceof Error ? inner.message : String(inner));
  }
}

/**
 * Downloads `key` into `sink`, checking its size and SHA256 against its metadata, retrying
 * damaged bodies and resuming dropped connections. Throws an integrity error (exit 5) when the
 * object stays damaged; `sink` then holds an unspecified prefix (write only to scratch files).
 *
 * @example
 * ```ts
 * const got = await downloadVerified(storage, key, {
 *   write: (bytes) => writeAll(file, bytes),
 *   reset: async () => {
 *     await file.truncate(0);
 *     await file.seek(0, Deno.SeekMode.Start);
 *   },
 * });
 * console.log(got.sha256, got.size, got.retries);
 * ```
 */
export async function downloadVerified(
  storage: Storage,
  key: string,
  sink: DownloadSink,
  options: DownloadOptions = {},
): Promise<Downloaded> {
  const before = retriesSoFar();
  let lastProblem: string | undefined;
  for (let attempt = 1;; attempt++) {
    if (attempt > 1) await sink.reset();
    try {
      const got = hasRanges(storage)
        ? await rangedAttempt(storage, key, sink, options)
        : await streamedAttempt(storage, key, sink, options);
      return { ...got, retries: retriesSoFar() - before };
    } catch (err) {
      if (!(err instanceof BodyFailure)) throw err;
      const problem = err.inner instanceof Error ? err.inner.message : String(err.inner);
      // The same wrong digest twice is the stored object, not the wire.
      if (attempt >= transferAttempts || problem === lastProblem) throw err.inner;
      lastProblem = problem;
      reportRetry({
        op: "download",
        key,
        attempt: attempt + 1,
        of: transferAttempts,
        reason: retryReason(err.inner),
      });
      await backoff(attempt + 1);
    }
  }
}

/** Size check before any byte moves: metadata and storage must agree. */
function checkedSize(info: ObjectInfo): { sha256: string; size: number } {
  const promised = promisedIntegrity(info);
  if (info.size !== promised.size) {
    throw integrityError(
      info.key,
      info.size < promised.size ? "object is truncated" : "object is longer than its metadata says",
      `${promised.size} bytes`,
      `${info.size} bytes`,
    );
  }
  return promised;
}

function compare(key: string, promised: { sha256: string; size: number }, got: {
  sha256: string;
  size: number;
}): void {
  if (got.size !== promised.size) {
    throw new BodyFailure(
      integrityError(
        key,
        got.size < promised.size ? "object is truncated" : "object size differs",
        `${promised.size} bytes`,
        `${got.size} bytes`,
      ),
    );
  }
  if (got.sha256 !== promised.sha256) {
    throw new BodyFailure(integrityError(key, "SHA256 mismatch", promised.sha256, got.sha256));
  }
}

/** One attempt over ranges: `parallel` requests in flight, consumed and written in order. */
async function rangedAttempt(
  storage: Storage & RangeSource,
  key: string,
  sink: DownloadSink,
  options: DownloadOptions,
): Promise<Omit<Downloaded, "retries">> {
  const info = await storage.head(key);
  if (info === null) throw integrityError(key, "object is missing");
  const promised = checkedSize(info);
  const rangeSize = options.rangeSize ?? 32 * MiB;
  const parallel = options.parallel ?? 2;
  const size = promised.size;
  const onThread = options.hashOnThread ?? size >= hashThreadFrom;
  // Started before the first request, so that the worker boots while the first range arrives.
  const starting = onThread ? startThreadHash() : Promise.resolve(null);
  const count = Math.ceil(size / rangeSize);
  const spare: Uint8Array[] = [];
  const inFlight: Promise<Uint8Array>[] = [];
  const issue = (index: number): void => {
    if (index >= count) return;
    const start = index * rangeSize;
    const length = Math.min(rangeSize, size - start);
    const buf = spare.pop()?.subarray(0, length) ?? rangeBuffer(rangeSize, onThread, length);
    const p = fetchRange(storage, key, start, buf);
    p.catch(() => {}); // observed when its turn comes; a failure elsewhere must not crash
    inFlight.push(p);
  };
  let threadHash: ThreadHash | null = null;
  const hash = createHash("sha256");
  let done = 0;
  const onSlice = (bytes: number): void => {
    done += bytes;
    options.onBytes?.(done);
  };
  try {
    for (let i = 0; i < parallel; i++) issue(i);
    threadHash = await starting;
    for (let index = 0; index < count; index++) {
      const buf = await inFlight.shift()!;
      issue(index + parallel);
      await writeHashing(buf, sink, hash, threadHash, onSlice);
      spare.push(new Uint8Array(buf.buffer, 0, rangeSize));
    }
    const sha256 = threadHash ? await threadHash.digest() : hash.digest("hex");
    compare(key, promised, { sha256, size: done });
  } catch (err) {
    // Nothing may still write into the buffers once this attempt is over.
    await Promise.allSettled(inFlight);
    throw err;
  } finally {
    threadHash?.close();
  }
  return { info, sha256: promised.sha256, size: done };
}

/**
 * Bytes a download hands its sink per call, each hashed while it is written when the main thread
 * hashes. A restore writes each slice at once, in 64 KiB calls (`writeAllSync`). With 1 MiB
 * slices a 1 GiB restore took a median 1.79 and 1.85 s in two sets of alternating runs, with
 * 256 KiB slices 2.08 and 2.31 s (docs/benchmarks.md). Progress moves once per slice.
 */
export const sinkSlice = 1024 * 1024;

/**
 * Objects from this size up are hashed on a second thread (`hash_thread.ts`). Below it, the
 * worker's start (about 25 ms of a thread) would cost more than the hash it takes over.
 */
const hashThreadFrom = 64 * MiB;

/** A range buffer: shared memory when a worker hashes it. */
function rangeBuffer(size: number, shared: boolean, length: number): Uint8Array {
  const memory = shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size);
  return new Uint8Array(memory, 0, length);
}

/**
 * Writes `bytes` to `sink` a slice at a time (`sinkSlice`), then `onSlice` hears its length;
 * resolves once the bytes are written and hashed, so the buffer may be reused. With a
 * `threadHash`, the worker hashes the whole range while the slices are written; without one,
 * each slice is added to `hash` here once the sink's write has started (a sink that writes on a
 * blocking thread is still writing it). Hashing a whole range first (16 MiB, 9 ms) held the main
 * thread while the sink's next write call waited: a 1 GiB restore took 2.10 s that way and
 * 1.88 s slice by slice, with curl's GET at 0.97 s (docs/benchmarks.md).
 */
async function writeHashing(
  bytes: Uint8Array,
  sink: DownloadSink,
  hash: Hash,
  threadHash: ThreadHash | null,
  onSlice: (bytes: number) => void,
): Promise<void> {
  const hashed = threadHash?.update(bytes);
  hashed?.catch(() => {}); // awaited below, after the writes
  for (let at = 0; at < bytes.byteLength; at += sinkSlice) {
    const slice = bytes.subarray(at, at + sinkSlice);
    const written = sink.write(slice);
    written.catch(() => {}); // awaited below; the hash must not leave it unobserved meanwhile
    if (!threadHash) hash.update(slice);
    await written;
    onSlice(slice.byteLength);
  }
  await hashed;
}

/** Fills `buf` with bytes from `start`, resuming from the last byte received when the body stops. */
async function fetchRange(
  storage: RangeSource,
  key: string,
  start: number,
  buf: Uint8Array,
): Promise<Uint8Array> {
  const at = { filled: 0 };
  for (let resumes = 0;; resumes++) {
    try {
      await storage.readRangeInto(key, start, buf, at);
      if (at.filled === buf.byteLength) return buf;
      throw new ResumableError("body ended early");
    } catch (err) {
      if (!(err instanceof ResumableError)) throw err;
      if (resumes >= resumeAttempts) {
        throw err.final ?? new WalsyncError(
          "storage",
          `${key}: the connection dropped ${
            resumes + 1
          } times while downloading (${err.message}); check the network and retry`,
        );
      }
      reportRetry({
        op: "resume",
        key,
        attempt: resumes + 2,
        of: resumeAttempts + 1,
        from: start + at.filled,
        reason: err.message,
      });
      await backoff(resumes + 2);
    }
  }
}

/** One attempt over a plain `get` stream (storage without ranges): whole object, in order. */
async function streamedAttempt(
  storage: Storage,
  key: string,
  sink: DownloadSink,
  options: DownloadOptions,
): Promise<Omit<Downloaded, "retries">> {
  const { body, info, promised } = await openPromised(storage, key);
  const hash = createHash("sha256");
  let done = 0;
  try {
    for await (const chunk of body) {
      if (done + chunk.byteLength > promised.size) {
        throw integrityError(
          key,
          "object is longer than its metadata says",
          `${promised.size} bytes`,
          `more than ${promised.size} bytes`,
        );
      }
      hash.update(chunk);
      done += chunk.byteLength;
      options.onBytes?.(done);
      await sink.write(chunk);
    }
  } catch (err) {
    if (err instanceof WalsyncError && err.kind === "integrity") throw new BodyFailure(err);
    throw err;
  }
  compare(key, promised, { sha256: hash.digest("hex"), size: done });
  return { info, sha256: promised.sha256, size: done };
}
