/**
 * An opened S3 bucket: the SDK client with Walsync's settings (timeouts, attempts, path-style
 * for custom endpoints, no default checksums), the agents of the fetch path, and what every
 * request needs (bucket, key prefix, encryption). The other `s3_*` modules take it as their
 * first argument.
 * @module
 */
import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { type ErrorContext, type SdkErrorLike, toStorageError } from "./s3_errors.ts";
import { type FetchTarget, type PutAgents, putAgents } from "./transfer/s3_fetch.ts";
import { type HttpConnections, httpConnections } from "./transfer/http_range.ts";

/** Options for opening an S3 bucket as storage (`s3Storage`). */
export interface S3StorageOptions {
  /** Bucket name. */
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing slash; may be empty. */
  prefix: string;
  /** Custom endpoint URL; falls back to `AWS_ENDPOINT_URL_S3`. */
  endpoint?: string;
  /** Region; falls back to `AWS_REGION`, then `us-east-1`. */
  region?: string;
  /** Static credentials (from a config file); the SDK's default chain when absent. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Server-side encryption asked of S3 for every object written. */
  sse?: "AES256" | "aws:kms";
  /** KMS key id for `sse: "aws:kms"`; the bucket's default key when absent. */
  sseKmsKeyId?: string;
}

const maxSockets = 16;
// A connect timeout of 2 s over 5 attempts keeps an unreachable endpoint to about 10 s.
const connectionTimeoutMs = 2_000;
const maxAttempts = 5;
// Guards against a server that accepts a connection and then goes silent. Generous because
// a reader applying backpressure (a slow disk during restore) also leaves the socket idle.
const socketTimeoutMs = 300_000;

// The SDK logs some warnings to the console when given no logger; Walsync owns its output.
const silentLogger = {
  trace(): void {},
  debug(): void {},
  info(): void {},
  warn(): void {},
  error(): void {},
};

/** Server-side encryption parameters, spread into every write command; empty without SSE. */
export type S3Encryption = {
  readonly ServerSideEncryption?: "AES256" | "aws:kms";
  readonly SSEKMSKeyId?: string;
};

function encryptionFor(options: S3StorageOptions): S3Encryption {
  return {
    ...(options.sse ? { ServerSideEncryption: options.sse } : {}),
    ...(options.sse === "aws:kms" && options.sseKmsKeyId
      ? { SSEKMSKeyId: options.sseKmsKeyId }
      : {}),
  };
}

/** An opened bucket: what every S3 request of a storage needs. */
export interface S3Bucket {
  /** The SDK client. */
  client: S3Client;
  /** Bucket name. */
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing slash; may be empty. */
  prefix: string;
  /** The prefix with its trailing slash (empty without a prefix): prepended to every key. */
  base: string;
  /** Custom endpoint URL, or undefined for AWS. */
  endpoint: string | undefined;
  /** Region the requests are signed for. */
  region: string;
  /** Where the storage is, for messages: the endpoint without credentials, or AWS. */
  where: string;
  /** Server-side encryption asked for every object written. */
  encryption: S3Encryption;
  /** The bucket as the fetch path (node:http, signed by hand) addresses it. */
  fetchTarget: FetchTarget;
  /** Keep-alive agents of the fetch path's PUTs. */
  agents: PutAgents;
  /** Keep-alive connections of the ranged GETs (`transfer/http_range.ts`). */
  connections: HttpConnections;
}

/** Where the storage is, for messages: the endpoint without any `user:pass@`, or AWS. */
function describeEndpoint(endpoint: string | undefined, region: string): string {
  if (endpoint === undefined) return `AWS S3 (${region})`;
  try {
    const url = new URL(endpoint);
    url.username = "";
    url.password = "";
    return url.toString().replace(/\/$/, "");
  } catch {
    return "the configured endpoint (not a valid URL)";
  }
}

/**
 * Opens a bucket: resolves endpoint and region (options, then `AWS_ENDPOINT_URL_S3` and
 * `AWS_REGION`), creates the client and the fetch path's agents. Sends no request.
 * @example
 * ```ts
 * const s3 = openS3Bucket({ bucket: "backups", prefix: "prod", region: "eu-west-1" });
 * await checkBucket(s3);
 * closeS3Bucket(s3);
 * ```
 */
export function openS3Bucket(options: S3StorageOptions): S3Bucket {
  const endpoint = options.endpoint || Deno.env.get("AWS_ENDPOINT_URL_S3") || undefined;
  const region = options.region || Deno.env.get("AWS_REGION") || "us-east-1";
  const bucket = options.bucket;
  const prefix = options.prefix.replace(/^\/+|\/+$/g, "");
  const client = new S3Client({
    region,
    endpoint,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // Custom endpoints (MinIO, R2, ...) rarely have wildcard DNS for virtual-host buckets.
    forcePathStyle: endpoint !== undefined,
    // The default (WHEN_SUPPORTED) sends streamed bodies as aws-chunked with a trailing
    // checksum, which some S3-compatible servers store verbatim, framing bytes included.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts,
    logger: silentLogger,
    requestHandler: {
      connectionTimeout: connectionTimeoutMs,
      socketTimeout: socketTimeoutMs,
      httpAgent: { keepAlive: true, maxSockets },
      httpsAgent: { keepAlive: true, maxSockets },
    },
  });
  return {
    client,
    bucket,
    prefix,
    base: prefix === "" ? "" : `${prefix}/`,
    endpoint,
    region,
    where: describeEndpoint(endpoint, region),
    encryption: encryptionFor(options),
    fetchTarget: {
      endpoint,
      region,
      bucket,
      credentials: () => client.config.credentials(),
    },
    agents: putAgents(maxSockets),
    connections: httpConnections(),
  };
}

/** The object key in the bucket: the storage key under the prefix. */
export function fullKey(s3: S3Bucket, key: string): string {
  return s3.base + key;
}

/** What an error message needs to say where `action` failed. */
export function errorContext(s3: S3Bucket, action: string): ErrorContext {
  return { bucket: s3.bucket, where: s3.where, region: s3.region, action };
}

/** Checks that the endpoint answers, the credentials are accepted and the bucket exists. */
export async function checkBucket(s3: S3Bucket): Promise<void> {
  try {
    await s3.client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
  } catch (err) {
    // HEAD responses have no body, so a missing bucket is only a bare 404.
    if ((err as SdkErrorLike)?.$metadata?.httpStatusCode === 404) {
      throw toStorageError({ name: "NoSuchBucket" }, errorContext(s3, "check"));
    }
    throw toStorageError(err, errorContext(s3, "check"));
  }
}

/** Releases the client's and the agents' connections. */
export function closeS3Bucket(s3: S3Bucket): void {
  s3.client.destroy();
  s3.agents.http.destroy();
  s3.agents.https.destroy();
  s3.connections.close();
}
