/**
 * Streaming SHA256: every byte Walsync writes or reads passes through one of these.
 *
 * `node:crypto` is used because Web Crypto has no incremental digest; see
 * `docs/sqlite-facts.md` (fact 4) for the measured throughput.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { readAt } from "./read_at.ts";

/** SHA256 of a byte array, as lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A pass-through stream that hashes and counts what flows through it. */
export interface HashingStream {
  /** Put this in the pipe. */
  stream: TransformStream<Uint8Array, Uint8Array>;
  /** Hex digest of everything that passed; valid once the stream has flushed. */
  digest(): string;
  /** Bytes that passed so far. */
  bytes(): number;
}

/** Creates a pass-through stream that computes SHA256 and a byte count of its content. */
export function hashingStream(onBytes?: (total: number) => void): HashingStream {
  const hash: Hash = createHash("sha256");
  let total = 0;
  let hex: string | undefined;
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      hash.update(chunk);
      total += chunk.byteLength;
      onBytes?.(total);
      controller.enqueue(chunk);
    },
    flush() {
      hex = hash.digest("hex");
    },
  });
  return {
    stream,
    digest() {
      if (hex === undefined) throw new Error("digest read before the stream finished");
      return hex;
    },
    bytes: () => total,
  };
}

/** Size of the chunks a default reader of {@link sourceStream} gets. */
const chunkSize = 1 << 20;

/** A stream of one byte array. */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Bytes that can be read at any offset: a file, or a database image held open. */
export interface ByteSource {
  /** Total bytes. */
  readonly size: number;
  /** Fills `buffer` from `offset`; returns how many bytes it read (fewer only at the end). */
  read(offset: number, buffer: Uint8Array): Promise<number>;
}

/** Size of the reads {@link hashSource} makes. */
const sourceChunkSize = 4 << 20;

/**
 * SHA256 of a whole {@link ByteSource}: the next reads are in flight while one chunk is hashed.
 * `onChunk` sees every chunk in order, in the same pass (for per-part checksums, say).
 *
 * @example
 * ```ts
 * const { sha256, size } = await hashSource(image, (chunk) => parts.update(chunk));
 * ```
 */
export async function hashSource(
  source: ByteSource,
  onChunk?: (bytes: Uint8Array) => void,
): Promise<{ sha256: string; size: number }> {
  const ahead = 2;
  const buffers = Array.from({ length: ahead + 1 }, () => new Uint8Array(sourceChunkSize));
  const hash = createHash("sha256");
  const reads: Promise<Uint8Array>[] = [];
  let issued = 0;
  const issue = () => {
    const offset = issued * sourceChunkSize;
    const buffer = buffers[issued++ % buffers.length];
    reads.push(
      offset >= source.size
        ? Promise.resolve(buffer.subarray(0, 0))
        : source.read(offset, buffer).then((n) => buffer.subarray(0, n)),
    );
  };
  try {
    for (let i = 0; i < ahead; i++) issue();
    let size = 0;
    while (size < source.size) {
      const chunk = await reads.shift()!;
      if (chunk.byteLength === 0) break;
      // The buffer two reads back is free again: hash this chunk while that one fills.
      issue();
      hash.update(chunk);
      onChunk?.(chunk);
      size += chunk.byteLength;
    }
    if (size !== source.size) {
      throw new Error(`read ${size} bytes of a source of ${source.size}`);
    }
    return { sha256: hash.digest("hex"), size };
  } finally {
    await Promise.allSettled(reads);
  }
}

/**
 * A {@link ByteSource} as a byte stream, from the start. A BYOB reader gets the bytes read
 * straight into its own buffer; a default reader gets fresh chunks of up to 1 MiB.
 */
export function sourceStream(
  source: ByteSource,
  onBytes?: (total: number) => void,
): ReadableStream<Uint8Array> {
  let total = 0;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: chunkSize,
    async pull(controller) {
      const request = controller.byobRequest!;
      if (total >= source.size) {
        controller.close();
        request.respond(0);
        return;
      }
      const n = await source.read(total, request.view as Uint8Array);
      if (n === 0) throw new Error(`source ended at ${total} of ${source.size} bytes`);
      total += n;
      onBytes?.(total);
      request.respond(n);
    },
  });
}

/** A file as a {@link ByteSource}; close it when done. */
export async function fileSource(path: string): Promise<ByteSource & { close(): void }> {
  const file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  let queue: Promise<unknown> = Promise.resolve();
  const readFrom = (offset: number, buffer: Uint8Array): Promise<number> =>
    readAt(
      file,
      offset,
      buffer.subarray(0, Math.min(buffer.byteLength, Math.max(0, size - offset))),
    );
  return {
    size,
    read(offset, buffer) {
      // One read at a time: the descriptor's position is shared.
      const result = queue.then(() => readFrom(offset, buffer));
      queue = result.catch(() => {});
      return result;
    },
    close: () => file.close(),
  };
}
