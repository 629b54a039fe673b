/**
 * What an S3 error means: the one-line `storage` error Walsync shows for it, whether a failed
 * request is worth another try, and whether it says "not found" or "condition refused".
 * Messages are built from error codes and HTTP statuses only, never from raw SDK text.
 * @module
 */
import { WalsyncError } from "../support/errors.ts";

/** What the SDK's errors carry that we look at; everything is optional. */
export interface SdkErrorLike {
  name?: string;
  Code?: string;
  code?: string;
  errno?: string;
  cause?: unknown;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

// Codes from the server end up in messages, so only plain identifiers get through.
function safeCode(value: unknown): string | undefined {
  return typeof value === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(value) ? value : undefined;
}

/** The network error code (ECONNREFUSED, ...) of an error or of any error in its cause chain. */
export function networkCode(err: unknown): string | undefined {
  for (let e = err as SdkErrorLike | undefined, depth = 0; e && depth < 5; depth++) {
    const code = safeCode(e.code) ?? safeCode(e.errno);
    if (code && /^E[A-Z_]+$/.test(code)) return code;
    if (e.name === "TimeoutError") return "ETIMEDOUT";
    // Deno's own network errors surface by class name rather than errno code.
    if (e.name === "ConnectionRefused") return "ECONNREFUSED";
    if (e.name === "ConnectionReset") return "ECONNRESET";
    if (e.name === "TimedOut") return "ETIMEDOUT";
    e = e.cause as SdkErrorLike | undefined;
  }
  return undefined;
}

/** Network error codes in words, for messages and retry log lines. */
export const networkReasons: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "timed out",
  ECONNRESET: "connection reset",
  EPIPE: "connection closed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNABORTED: "connection aborted",
};

/** Context for turning an SDK error into a message. */
export interface ErrorContext {
  /** Bucket name. */
  bucket: string;
  /** Where the storage is, as messages name it (the endpoint without credentials, or AWS). */
  where: string;
  /** Region the client signs for. */
  region: string;
  /** What was being done, e.g. `put "db/x"`. */
  action: string;
}

/** Turns anything the SDK throws into a one-line `storage` error (or passes a WalsyncError on). */
export function toStorageError(err: unknown, ctx: ErrorContext): WalsyncError {
  if (err instanceof WalsyncError) return err;
  const e = (typeof err === "object" && err !== null ? err : {}) as SdkErrorLike;
  const name = safeCode(e.name);
  const code = safeCode(e.Code) ?? name;
  const status = e.$metadata?.httpStatusCode;

  if (name === "CredentialsProviderError") {
    return new WalsyncError(
      "storage",
      "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
    );
  }
  if (code === "NoSuchBucket") {
    return new WalsyncError(
      "storage",
      `bucket "${ctx.bucket}" does not exist at ${ctx.where}; create it or fix --bucket`,
    );
  }
  if (
    code === "InvalidAccessKeyId" || code === "SignatureDoesNotMatch" ||
    code === "AccessDenied" || code === "InvalidToken" || code === "ExpiredToken" ||
    code === "Forbidden" || status === 403
  ) {
    // HEAD responses carry no error body, so the SDK can only say "Forbidden" or "Unknown".
    const why = code && code !== "Forbidden" && code !== "Unknown" ? ` (${code})` : "";
    return new WalsyncError(
      "storage",
      `access denied by ${ctx.where}${why}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)`,
    );
  }
  if (code === "RequestTimeTooSkewed") {
    return new WalsyncError(
      "storage",
      `${ctx.where} rejected the request because this machine's clock is off; fix the system time`,
    );
  }
  if (
    status === 301 || code === "PermanentRedirect" || code === "AuthorizationHeaderMalformed" ||
    code === "IllegalLocationConstraintException"
  ) {
    const actual = safeCode(e.$response?.headers?.["x-amz-bucket-region"]);
    const hint = actual ? ` (it is in ${actual})` : "";
    return new WalsyncError(
      "storage",
      `bucket "${ctx.bucket}" is not in region ${ctx.region}${hint}; set --region or AWS_REGION`,
    );
  }
  const net = networkCode(err);
  if (net !== undefined && status === undefined) {
    const reason = networkReasons[net] ?? net;
    return new WalsyncError(
      "storage",
      `cannot reach ${ctx.where}: ${reason}; check --endpoint / AWS_ENDPOINT_URL_S3 and the network`,
    );
  }
  const what = code ?? "unknown error";
  const http = status !== undefined ? ` (HTTP ${status})` : "";
  return new WalsyncError("storage", `S3 ${ctx.action} failed at ${ctx.where}: ${what}${http}`);
}

/**
 * Codes of a body the server received damaged: its bytes did not match the checksum sent with
 * it (AWS: BadDigest, InvalidDigest; MinIO: XAmzContentChecksumMismatch). Sending the same
 * bytes again normally succeeds.
 */
const damagedInTransit = new Set([
  "BadDigest",
  "InvalidDigest",
  "XAmzContentChecksumMismatch",
  "XAmzContentSHA256Mismatch",
  "IncompleteBody",
]);

/** A short, secret-free reason for a retry's log line: the error code and HTTP status. */
export function retryReasonOf(err: unknown): string {
  const e = (typeof err === "object" && err !== null ? err : {}) as SdkErrorLike;
  const code = safeCode(e.Code) ?? safeCode(e.name);
  const status = e.$metadata?.httpStatusCode;
  const net = networkCode(err);
  if (net && status === undefined) return networkReasons[net] ?? net;
  return `${code ?? "error"}${status !== undefined ? ` (HTTP ${status})` : ""}`;
}

/** Whether a failed PUT (or part) is worth another try with a freshly opened body. */
export function isRetryable(err: unknown): boolean {
  const e = (typeof err === "object" && err !== null ? err : {}) as SdkErrorLike;
  const damaged = safeCode(e.Code) ?? safeCode(e.name);
  if (damaged !== undefined && damagedInTransit.has(damaged)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429;
  const code = safeCode(e.Code) ?? safeCode(e.name);
  if (code === "SlowDown" || code === "RequestTimeout" || code === "InternalError") return true;
  const net = networkCode(err);
  return net !== undefined && net !== "ENOTFOUND";
}

/**
 * A conditional write refused by its condition: 412 Precondition Failed (the object exists,
 * or has another ETag), 404 for `If-Match` on a deleted object, and AWS's 409
 * ConditionalRequestConflict (a concurrent conditional write won).
 */
export function isConditionRefused(err: unknown): boolean {
  const e = err as SdkErrorLike;
  const status = e?.$metadata?.httpStatusCode;
  return status === 412 || status === 409 || e?.name === "PreconditionFailed" ||
    e?.Code === "PreconditionFailed" || e?.name === "ConditionalRequestConflict" ||
    isNotFound(err);
}

/** A missing object (404, NoSuchKey), as opposed to a missing bucket. */
export function isNotFound(err: unknown): boolean {
  const e = (typeof err === "object" && err !== null ? err : {}) as SdkErrorLike;
  return e.name === "NotFound" || e.name === "NoSuchKey" || e.Code === "NoSuchKey" ||
    (e.$metadata?.httpStatusCode === 404 && e.name !== "NoSuchBucket" && e.Code !== "NoSuchBucket");
}
