/**
 * Optional HMAC-SHA256 signing of a history (`docs/format.md`, "Signing"): each object's
 * digest and link, and the head. The key comes from `WALSYNC_SIGNING_KEY` (or a config's
 * `signing-key:`) and is registered with `redact` so it never reaches any output.
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { integrityError } from "../support/errors.ts";
import { meta } from "../format/layout.ts";
import { registerSecret } from "../support/redact.ts";
import type { Metadata } from "../storage/storage.ts";

/** Metadata key of an object's signature. */
export const signatureMeta = "walsync-signature";

/** A signing key, opaque to callers (the bytes never leave this module). */
export interface SigningKey {
  /** Hex HMAC-SHA256 of `text` under the key. */
  mac(text: string): string;
}

/**
 * The signing key from the environment (`WALSYNC_SIGNING_KEY`) or `configured`, if any.
 * @example
 * ```ts
 * const signing = signingKeyFrom(config.signingKey); // else WALSYNC_SIGNING_KEY; undefined: unsigned
 * const history = await readHistory(storage, "app.db", { signing });
 * ```
 */
export function signingKeyFrom(configured?: string): SigningKey | undefined {
  const secret = configured ?? Deno.env.get("WALSYNC_SIGNING_KEY");
  if (!secret) return undefined;
  registerSecret(secret);
  return { mac: (text) => createHmac("sha256", secret).update(text).digest("hex") };
}

/** What an object's signature covers: its key, digest and link to the object before it. */
export function objectSigningText(key: string, metadata: Metadata): string {
  return [
    "walsync-object",
    key,
    metadata[meta.sha256] ?? "",
    metadata[meta.prevKey] ?? "",
    metadata[meta.prevSha256] ?? "",
  ].join("\n");
}

/** Adds `walsync-signature` to `metadata` (which must already hold `sha256`). */
export function signObject(key: string, metadata: Metadata, signing?: SigningKey): Metadata {
  if (!signing) return metadata;
  return { ...metadata, [signatureMeta]: signing.mac(objectSigningText(key, metadata)) };
}

/** Constant-time comparison of two hex MACs. */
export function sameMac(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(new TextEncoder().encode(a), new TextEncoder().encode(b));
}

/**
 * Checks an object's signature when a key is given: a missing or wrong one is an integrity
 * error naming the object. Returns whether the object carries a signature at all.
 */
export function checkObjectSignature(
  key: string,
  metadata: Metadata,
  signing?: SigningKey,
): boolean {
  const signature = metadata[signatureMeta];
  if (!signing) return signature !== undefined;
  if (signature === undefined) {
    throw integrityError(key, "object is not signed, but a signing key is set");
  }
  if (!sameMac(signature, signing.mac(objectSigningText(key, metadata)))) {
    throw integrityError(key, "signature does not match (forged object, or another signing key)");
  }
  return true;
}
