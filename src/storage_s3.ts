/**
 * S3-compatible storage. (Placeholder: being written.)
 * @module
 */
import type { Storage } from "./storage.ts";
import { WalsyncError } from "./errors.ts";

/** Options for {@link s3Storage}. */
export interface S3StorageOptions {
  /** Bucket name. */
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing slash; may be empty. */
  prefix: string;
  /** Custom endpoint URL; falls back to `AWS_ENDPOINT_URL_S3`. */
  endpoint?: string;
  /** Region; falls back to `AWS_REGION`, then `us-east-1`. */
  region?: string;
}

/** Opens an S3 bucket (and prefix) as storage. */
export function s3Storage(_options: S3StorageOptions): Storage {
  throw new WalsyncError("failure", "S3 storage is not implemented yet");
}
