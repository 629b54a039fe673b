/**
 * The one storage interface everything above it is written against.
 *
 * Two implementations sit behind it: `s3.ts` (any S3-compatible service) and `file.ts` (a
 * local directory used as the bucket). Neither knows anything about SQLite, snapshots or WAL
 * segments; they move bytes and small string metadata.
 * @module
 */
import type { PartDigests } from "./transfer/parts.ts";

/** Metadata stored with an object: lower-case keys, ASCII values (S3 user metadata rules). */
export type Metadata = Record<string, string>;

/** What storage knows about one object. */
export interface ObjectInfo {
  /** Full key, relative to the storage root (the bucket's prefix is not included). */
  key: string;
  /** Size of the stored bytes. */
  size: number;
  /** User metadata. Empty when listed without metadata. */
  metadata: Metadata;
  /** When storage last wrote the object, if it says. */
  lastModified?: Date;
}

/** A body to upload: a function that opens a fresh stream (a retry or a second pass may reopen it). */
export type BodySource = () => ReadableStream<Uint8Array>;

/** What the caller already knows about a body it uploads. */
export interface PutOptions {
  /** Exact byte length of the body. */
  size: number;
  /** Hex SHA256 of the body; the implementation re-hashes while streaming and fails on mismatch. */
  sha256: string;
  /** User metadata; must already contain `sha256`. */
  metadata: Metadata;
  /** Per-part checksums taken with `sha256` (a multipart S3 upload sends each part with its own). */
  parts?: PartDigests;
}

/** A small object read whole, with the version token a conditional write compares against. */
export interface TaggedObject {
  /** The object's bytes. */
  bytes: Uint8Array;
  /** Opaque version token (S3 ETag; on `file://` the SHA256 of the bytes). */
  etag: string;
  /** When storage wrote it, if it says. */
  lastModified?: Date;
}

/** What a conditional write did: written (with the new token), or refused by its condition. */
export type ConditionalWrite = { written: true; etag: string } | { written: false };

/** A storage backend: S3 bucket (with optional prefix) or local directory. */
export interface Storage {
  /** Where the objects live, for messages: `s3://bucket/prefix` or `file:///dir`. Never a secret. */
  readonly location: string;
  /** Uploads an object, replacing any object of the same key. */
  put(key: string, body: BodySource, options: PutOptions): Promise<void>;
  /** Opens an object for reading. Throws a `WalsyncError` of kind `integrity` when it is missing. */
  get(key: string): Promise<{ body: ReadableStream<Uint8Array>; info: ObjectInfo }>;
  /** Size and metadata of an object, or `null` when it does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, in key order; `metadata` is empty. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes objects; missing keys are not an error. */
  delete(keys: string[]): Promise<void>;
  /** Reads a small object (a head or lease) with its version token, or `null` when missing. */
  readTagged(key: string): Promise<TaggedObject | null>;
  /**
   * Writes a small object only when no object has the key (S3 `If-None-Match: *`). A refusal
   * is `{ written: false }`, not an error.
   */
  createIfAbsent(key: string, bytes: Uint8Array): Promise<ConditionalWrite>;
  /**
   * Replaces a small object only when its current version is `etag` (S3 `If-Match`). A
   * refusal (changed or deleted meanwhile) is `{ written: false }`, not an error.
   */
  replaceIfMatch(key: string, bytes: Uint8Array, etag: string): Promise<ConditionalWrite>;
  /** Checks that the storage is reachable and the bucket exists; throws a `storage` error otherwise. */
  check(): Promise<void>;
  /** Releases connections. */
  close(): void;
}
