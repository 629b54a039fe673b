/**
 * Writing and reading objects with their SHA256 checked end to end.
 *
 * Upload: the digest is computed first (it must travel in the object's metadata, which S3
 * takes before the body), then storage re-hashes while streaming and refuses a body that
 * changed in between. Download: the digest is recomputed while streaming and compared with
 * the metadata at the end, together with the byte count.
 * @module
 */
import { integrityError } from "../support/errors.ts";
import {
  type ByteSource,
  bytesStream,
  fileSource,
  hashingStream,
  hashSource,
  sha256Hex,
  sourceStream,
} from "../support/hash.ts";
import { formatVersion, meta } from "../format/layout.ts";
import type { Metadata, ObjectInfo, Storage } from "./storage.ts";
import { multipartThreshold, partChecksummer, partSizeFor } from "./transfer/parts.ts";

/** Digest and size of an object that was written. */
export interface WrittenObject {
  /** Key it was written to. */
  key: string;
  /** Hex SHA256 of its bytes. */
  sha256: string;
  /** Byte count. */
  size: number;
}

function withIntegrity(metadata: Metadata, sha256: string, size: number): Metadata {
  return {
    ...metadata,
    [meta.sha256]: sha256,
    [meta.size]: String(size),
    [meta.format]: String(formatVersion),
  };
}

/**
 * Sources up to this size are read once into memory and sent from there: hashing and streaming
 * allocate buffers of megabytes, far more than a small snapshot or segment.
 */
const smallFileLimit = 1 << 20;

/** Uploads a file with its SHA256 and size in metadata (see {@link putSourceObject}). */
export async function putFileObject(
  storage: Storage,
  key: string,
  path: string,
  metadata: Metadata,
  onBytes?: (total: number) => void,
): Promise<WrittenObject> {
  const source = await fileSource(path);
  try {
    return await putSourceObject(storage, key, source, metadata, { onBytes });
  } finally {
    source.close();
  }
}

/**
 * Uploads a {@link ByteSource} (a database image held open, say) with its SHA256 and size in
 * metadata. The source is read twice: once for the digest (with the CRC32s of a large body,
 * which the server checks the upload against), once for the upload. `finishMetadata` gets
 * the metadata with the digest in it before the upload starts (to sign it, say).
 *
 * @example
 * ```ts
 * const written = await putSourceObject(storage, key, image, { [meta.kind]: "snapshot" });
 * ```
 */
export async function putSourceObject(
  storage: Storage,
  key: string,
  source: ByteSource,
  metadata: Metadata,
  options: {
    finishMetadata?: (metadata: Metadata) => Metadata;
    onBytes?: (total: number) => void;
  } = {},
): Promise<WrittenObject> {
  const finish = options.finishMetadata ?? ((m: Metadata) => m);
  if (source.size <= smallFileLimit) {
    const bytes = new Uint8Array(source.size);
    if ((await source.read(0, bytes)) !== source.size) {
      throw new Error(`${key}: source shorter than its ${source.size} bytes`);
    }
    options.onBytes?.(bytes.byteLength);
    return await putBytesObject(
      storage,
      key,
      bytes,
      finish({ ...metadata, [meta.sha256]: sha256Hex(bytes) }),
    );
  }
  const parts = source.size > multipartThreshold
    ? partChecksummer(partSizeFor(source.size))
    : undefined;
  const { sha256, size } = await hashSource(source, parts?.update);
  await storage.put(key, () => sourceStream(source, options.onBytes), {
    size,
    sha256,
    metadata: withIntegrity(finish({ ...metadata, [meta.sha256]: sha256 }), sha256, size),
    parts: parts?.finish(),
  });
  return { key, sha256, size };
}

/** Uploads bytes from memory with their SHA256 and size in metadata. */
export async function putBytesObject(
  storage: Storage,
  key: string,
  bytes: Uint8Array,
  metadata: Metadata,
): Promise<WrittenObject> {
  const sha256 = sha256Hex(bytes);
  await storage.put(key, () => bytesStream(bytes), {
    size: bytes.byteLength,
    sha256,
    metadata: withIntegrity(metadata, sha256, bytes.byteLength),
  });
  return { key, sha256, size: bytes.byteLength };
}

/** The digest and size an object's metadata promises; throws when they are missing or malformed. */
export function promisedIntegrity(info: ObjectInfo): { sha256: string; size: number } {
  const sha256 = info.metadata[meta.sha256];
  if (sha256 === undefined) throw integrityError(info.key, "sha256 metadata is missing");
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw integrityError(info.key, "sha256 metadata is malformed", "64 hex digits", sha256);
  }
  const sizeText = info.metadata[meta.size];
  if (sizeText === undefined) throw integrityError(info.key, "size metadata is missing");
  const size = Number(sizeText);
  if (!/^\d+$/.test(sizeText) || !Number.isSafeInteger(size)) {
    throw integrityError(info.key, "size metadata is malformed", "a byte count", sizeText);
  }
  const version = info.metadata[meta.format];
  if (version !== undefined && (!/^\d+$/.test(version) || Number(version) > formatVersion)) {
    throw integrityError(
      info.key,
      `written by a newer Walsync (format ${version}); upgrade walsync to read it`,
    );
  }
  return { sha256, size };
}

/** An object opened for a checked read. */
export interface VerifiedRead {
  /** Key, size and metadata as storage reported them. */
  info: ObjectInfo;
  /** The object's bytes; consume it completely, then call `finish`. */
  body: ReadableStream<Uint8Array>;
  /** Throws an integrity error naming the object when the bytes did not match the metadata. */
  finish(): { sha256: string; size: number };
}

/**
 * Opens an object and reads what its metadata promises (digest and size); the body is
 * cancelled when the metadata is unusable.
 */
export async function openPromised(
  storage: Storage,
  key: string,
): Promise<{
  body: ReadableStream<Uint8Array>;
  info: ObjectInfo;
  promised: { sha256: string; size: number };
}> {
  const { body, info } = await storage.get(key);
  try {
    return { body, info, promised: promisedIntegrity(info) };
  } catch (err) {
    await body.cancel().catch(() => {});
    throw err;
  }
}

/**
 * Opens an object for reading with its digest and size checked as it streams. The stream
 * itself errors early when more bytes arrive than the metadata promised.
 *
 * @example
 * ```ts
 * const read = await readObject(storage, key);
 * for await (const chunk of read.body) await file.write(chunk);
 * const { sha256, size } = read.finish(); // integrity error (exit 5) on a mismatch
 * ```
 */
export async function readObject(
  storage: Storage,
  key: string,
  onBytes?: (total: number) => void,
): Promise<VerifiedRead> {
  const { body, info, promised } = await openPromised(storage, key);
  const hashing = hashingStream((total) => {
    onBytes?.(total);
  });
  const guarded = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (hashing.bytes() + chunk.byteLength > promised.size) {
          controller.error(
            integrityError(
              key,
              "object is longer than its metadata says",
              `${promised.size} bytes`,
              `more than ${promised.size} bytes`,
            ),
          );
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  ).pipeThrough(hashing.stream);
  return {
    info,
    body: guarded,
    finish() {
      const size = hashing.bytes();
      if (size !== promised.size) {
        throw integrityError(
          key,
          size < promised.size ? "object is truncated" : "object size differs",
          `${promised.size} bytes`,
          `${size} bytes`,
        );
      }
      const sha256 = hashing.digest();
      if (sha256 !== promised.sha256) {
        throw integrityError(key, "SHA256 mismatch", promised.sha256, sha256);
      }
      return { sha256, size };
    },
  };
}

/** Reads the rest of an opened object into memory, then checks its digest and size. */
export async function readAllVerified(
  read: VerifiedRead,
): Promise<{ bytes: Uint8Array; sha256: string; size: number }> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of read.body) chunks.push(chunk);
  const { sha256, size } = read.finish();
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes, sha256, size };
}

/** Reads a whole (small) object into memory, checked. */
export async function readObjectBytes(
  storage: Storage,
  key: string,
): Promise<{ bytes: Uint8Array; info: ObjectInfo; sha256: string }> {
  const read = await readObject(storage, key);
  const { bytes, sha256 } = await readAllVerified(read);
  return { bytes, info: read.info, sha256 };
}
