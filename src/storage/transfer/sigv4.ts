/**
 * AWS Signature Version 4 for the few S3 requests that carry bulk bytes (ranged GETs and
 * part uploads), so that they can go through Deno's own `fetch` instead of the SDK's Node
 * HTTP layer: the body is then read straight into Walsync's buffers (a BYOB reader) and sent
 * from them, with no Node stream, no per-chunk garbage and no payload hash for the signature
 * (`UNSIGNED-PAYLOAD`; uploads carry `x-amz-checksum-sha256`, which the server verifies).
 * Everything else (listing, metadata, multipart create/complete) stays on the SDK.
 * @module
 */
import { createHash, createHmac } from "node:crypto";

/** Credentials as the SDK's provider chain resolves them. */
export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A request to sign. */
export interface SignedRequestInput {
  method: "GET" | "PUT";
  url: URL;
  /** Headers to send and sign (lower-case names); `host` and the x-amz ones are added. */
  headers: Record<string, string>;
  region: string;
  credentials: SigningCredentials;
  /** Signing time (tests pin it). */
  now?: Date;
  /** Hex SHA256 of the body; `UNSIGNED-PAYLOAD` (the default) leaves the body out of the signature. */
  payloadHash?: string;
}

/** S3's URI encoding: every byte except unreserved characters (and `/` in paths). */
export function uriEncode(text: string, keepSlash: boolean): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function hmac(key: string | Uint8Array, data: string): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

/**
 * Returns the headers to send (with `authorization`) for a request signed with SigV4 and an
 * unsigned payload. The URL's path must already be URI-encoded as S3 expects.
 */
export function signRequest(input: SignedRequestInput): Record<string, string> {
  const now = input.now ?? new Date();
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const payloadHash = input.payloadHash ?? "UNSIGNED-PAYLOAD";
  const headers: Record<string, string> = {
    ...input.headers,
    host: input.url.host,
    "x-amz-date": amzDate,
    "x-amz-content-sha256": payloadHash,
  };
  if (input.credentials.sessionToken) {
    headers["x-amz-security-token"] = input.credentials.sessionToken;
  }
  const names = Object.keys(headers).map((n) => n.toLowerCase()).sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = String(v).trim();
  const query = [...input.url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)])
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonical = [
    input.method,
    input.url.pathname,
    query,
    names.map((n) => `${n}:${lower[n]}\n`).join(""),
    names.join(";"),
    payloadHash,
  ].join("\n");
  const scope = `${day}/${input.region}/s3/aws4_request`;
  const toSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonical).digest("hex"),
  ].join("\n");
  let key = hmac(`AWS4${input.credentials.secretAccessKey}`, day);
  key = hmac(key, input.region);
  key = hmac(key, "s3");
  key = hmac(key, "aws4_request");
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  headers.authorization =
    `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${names.join(";")}, Signature=${signature}`;
  // fetch sets Host itself from the URL (the same value that was signed).
  delete headers.host;
  return headers;
}
