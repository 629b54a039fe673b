/**
 * Turns what the operator typed after `--bucket` into a {@link Storage}.
 *
 * Accepted forms: `my-bucket`, `s3://bucket/optional/prefix`, `file:///abs/dir`,
 * `file://./relative/dir`.
 * @module
 */
import { resolve } from "node:path";
import { usageError } from "../support/errors.ts";
import type { Storage } from "./storage.ts";
import { fileStorage } from "./file.ts";

/** Settings for S3 that do not come from the bucket string. */
export interface S3Settings {
  /** Custom endpoint (MinIO, R2, Tigris, B2); falls back to `AWS_ENDPOINT_URL_S3`. */
  endpoint?: string;
  /** Region; falls back to `AWS_REGION`, then `us-east-1`. */
  region?: string;
  /** Static credentials; the SDK's default chain when absent. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Server-side encryption for every object written. */
  sse?: "AES256" | "aws:kms";
  /** KMS key id for `sse: "aws:kms"`. */
  sseKmsKeyId?: string;
}

/** A parsed `--bucket` value. */
export type BucketSpec =
  | { kind: "file"; dir: string }
  | { kind: "s3"; bucket: string; prefix: string };

/** The forms `--bucket` accepts, for error messages and help. */
export const bucketForms = "a bucket name, s3://bucket/prefix, file:///abs/dir or file://./rel/dir";

/** Parses a `--bucket` value; throws a usage error naming the accepted forms. */
export function parseBucket(value: string): BucketSpec {
  const text = value.trim();
  if (text === "") throw usageError(`--bucket is empty; give ${bucketForms}`);
  if (text.startsWith("file://")) {
    const path = text.slice("file://".length);
    if (path === "") throw usageError(`--bucket ${text} has no directory; give ${bucketForms}`);
    return { kind: "file", dir: resolve(path) };
  }
  let bucket = text;
  let prefix = "";
  if (text.startsWith("s3://")) {
    const rest = text.slice("s3://".length);
    const slash = rest.indexOf("/");
    bucket = slash < 0 ? rest : rest.slice(0, slash);
    prefix = slash < 0 ? "" : rest.slice(slash + 1).replace(/^\/+|\/+$/g, "");
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw usageError(`--bucket ${text}: unknown scheme; give ${bucketForms}`);
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw usageError(
      `--bucket ${
        JSON.stringify(bucket)
      } is not a valid bucket name (3-63 lower-case letters, digits, dots, hyphens); give ${bucketForms}`,
    );
  }
  return { kind: "s3", bucket, prefix };
}

/**
 * Opens the storage a `--bucket` value names.
 * @example
 * ```ts
 * const storage = await openBucket("s3://backups/prod"); // or a directory: "/var/backups"
 * try {
 *   console.log(await listDatabases(storage));
 * } finally {
 *   storage.close();
 * }
 * ```
 */
export async function openBucket(value: string, settings: S3Settings = {}): Promise<Storage> {
  const spec = parseBucket(value);
  if (spec.kind === "file") return fileStorage(spec.dir);
  const { s3Storage } = await import("./s3.ts");
  return s3Storage({ bucket: spec.bucket, prefix: spec.prefix, ...settings });
}
