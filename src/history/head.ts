/**
 * The head of a database's history (`<db>/head`, format 3): the last object shipped and its
 * digest. Readers start from it; the writer moves it with a conditional write after every
 * shipped batch (`docs/format.md`, "History").
 * @module
 */
import { integrityError } from "../support/errors.ts";
import { headKey, maxTxid } from "../format/layout.ts";
import type { Storage } from "../storage/storage.ts";
import { sameMac, type SigningKey } from "./sign.ts";

/** Where a history ends. */
export interface Head {
  /** Database name. */
  db: string;
  /** Generation of the last object. */
  generation: string;
  /** Last txid of the history. */
  txid: number;
  /** Key of the last object (a snapshot or a segment). */
  key: string;
  /** Its SHA256. */
  sha256: string;
  /** Oldest generation kept by retention; the history starts at its snapshot. */
  base?: string;
  /** When it was written (writer's clock; informational). */
  updated: string;
  /** Hex HMAC-SHA256 when signed. */
  signature?: string;
}

/** A head as read from storage, with what a conditional write and a rollback check need. */
export interface StoredHead {
  /** The head. */
  head: Head;
  /** Version token for `replaceIfMatch`. */
  etag: string;
  /** When storage wrote it. */
  lastModified?: Date;
}

/** What a head's signature covers. */
export function headSigningText(head: Head): string {
  return [
    "walsync-head",
    head.db,
    head.generation,
    String(head.txid),
    head.key,
    head.sha256,
    head.base ?? "",
  ].join("\n");
}

/** The bytes stored for a head, signed when a key is given. */
export function encodeHead(head: Omit<Head, "signature">, signing?: SigningKey): Uint8Array {
  const signed: Head = signing ? { ...head, signature: signing.mac(headSigningText(head)) } : head;
  return new TextEncoder().encode(JSON.stringify({ "walsync-head": 3, ...signed }) + "\n");
}

/** Parses stored head bytes; malformed is an integrity error naming the head. */
export function decodeHead(db: string, bytes: Uint8Array): Head {
  const key = headKey(db);
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw integrityError(key, "head is not valid JSON");
  }
  const str = (name: string) => typeof value[name] === "string" ? value[name] as string : "";
  const txid = value.txid;
  if (
    value["walsync-head"] !== 3 || str("db") !== db || !str("generation") || !str("key") ||
    !/^[0-9a-f]{64}$/.test(str("sha256")) || typeof txid !== "number" ||
    !Number.isSafeInteger(txid) || txid < 0 || txid > maxTxid
  ) {
    throw integrityError(key, "head is malformed (fields missing, or another database's head)");
  }
  return {
    db,
    generation: str("generation"),
    txid,
    key: str("key"),
    sha256: str("sha256"),
    base: str("base") || undefined,
    updated: str("updated"),
    signature: str("signature") || undefined,
  };
}

/**
 * Checks a head's signature when a key is given (a missing or wrong one is an integrity
 * error). Returns whether the head is signed.
 */
export function checkHeadSignature(head: Head, signing?: SigningKey): boolean {
  if (!signing) return head.signature !== undefined;
  if (head.signature === undefined) {
    throw integrityError(headKey(head.db), "head is not signed, but a signing key is set");
  }
  if (!sameMac(head.signature, signing.mac(headSigningText(head)))) {
    throw integrityError(
      headKey(head.db),
      "head signature does not match (forged head, or another signing key)",
    );
  }
  return true;
}

/**
 * Reads the head of `db`, or null when there is none.
 * @example
 * ```ts
 * const stored = await readHead(storage, "app.db");
 * if (stored) console.log("history ends at", stored.head.key);
 * ```
 */
export async function readHead(storage: Storage, db: string): Promise<StoredHead | null> {
  const stored = await storage.readTagged(headKey(db));
  if (!stored) return null;
  return {
    head: decodeHead(db, stored.bytes),
    etag: stored.etag,
    lastModified: stored.lastModified,
  };
}
