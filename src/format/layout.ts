/**
 * Where things live in the bucket, and what their metadata says. `docs/format.md` is the
 * prose version of this file; change both together.
 *
 * ```
 * <db>/head      (format 3: where the history ends)
 * <db>/lease     (format 3: who may write it)
 * <db>/generations/<generation>/snapshots/<txid:16 hex>.db
 * <db>/generations/<generation>/wal/<first txid:16 hex>-<last txid:16 hex>.wal
 * ```
 * @module
 */

/**
 * Version of the layout and metadata written by this build; readers accept it and older.
 * 1: segments are raw WAL frames. 2: a segment may be zstd-compressed (`walsync-encoding`);
 * a segment without that key is still raw, so format 1 objects read unchanged. 3: one
 * anchored history per database (head, lease, `walsync-prev-key` links, optional signatures).
 */
export const formatVersion = 3;

/** The largest txid a key may hold: what a JavaScript number represents exactly. */
export const maxTxid = Number.MAX_SAFE_INTEGER;

/** Metadata keys (S3 user metadata: lower case, sent as `x-amz-meta-<key>`). */
export const meta = {
  sha256: "sha256",
  format: "walsync-format",
  kind: "walsync-kind",
  db: "walsync-db",
  generation: "walsync-generation",
  size: "walsync-size",
  created: "walsync-created",
  txid: "walsync-txid",
  pageSize: "walsync-page-size",
  pageCount: "walsync-page-count",
  txidFirst: "walsync-txid-first",
  txidLast: "walsync-txid-last",
  prevSha256: "walsync-prev-sha256",
  prevKey: "walsync-prev-key",
  signature: "walsync-signature",
  salt: "walsync-salt",
  checksumStart: "walsync-checksum-start",
  checksumEnd: "walsync-checksum-end",
  frames: "walsync-frames",
  commitSize: "walsync-commit-size",
  byteOrder: "walsync-byte-order",
  encoding: "walsync-encoding",
  decodedSize: "walsync-decoded-size",
} as const;

/** How a segment's body is stored: raw frames (`identity`, also when the key is absent) or zstd. */
export type SegmentEncoding = "identity" | "zstd";

/** The two kinds of object Walsync writes. */
export type ObjectKind = "snapshot" | "wal";

/** A parsed object key. */
export interface ParsedKey {
  /** Database name (the file name of the source database). */
  db: string;
  /** Generation id. */
  generation: string;
  /** Snapshot or WAL segment. */
  kind: ObjectKind;
  /** Snapshot: the txid it holds; segment: the first txid it holds. */
  txid: number;
  /** Snapshot: the same as `txid`; segment: the last txid it holds. */
  lastTxid: number;
}

const generationPattern = /^\d{8}T\d{9}Z-[0-9a-f]{8}$/;
const hex16 = /^[0-9a-f]{16}$/;

/** Checks a database name as used in keys: one path segment (a plain file name). */
export function isValidDbName(name: string): boolean {
  return name.length > 0 && name.length <= 200 && !name.includes("/") && name !== "." &&
    name !== ".." && ![...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

/** The one line for a database name that is not a single path segment (a usage error). */
export function invalidNameMessage(name: string): string {
  return `"${name}" is not a valid database name: use one path segment (no "/", not "." or "..", no control characters), e.g. --name app.db`;
}

/** A new generation id: UTC time to the millisecond, then 8 random hex digits, so ids sort by age. */
export function newGenerationId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(".", "");
  const random = crypto.getRandomValues(new Uint8Array(4));
  return `${stamp}-${Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** When a generation id says it started. */
export function generationTime(generation: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(generation);
  if (!m) return new Date(NaN);
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

/** 16 lower-case hex digits of a txid. */
export function txidHex(txid: number): string {
  if (!Number.isSafeInteger(txid) || txid < 0) throw new RangeError(`txid ${txid} out of range`);
  return txid.toString(16).padStart(16, "0");
}

/** Prefix of every object of one database. */
export function dbPrefix(db: string): string {
  return `${db}/generations/`;
}

/** Prefix of every object of one generation. */
export function generationPrefix(db: string, generation: string): string {
  return `${dbPrefix(db)}${generation}/`;
}

/** Key of the snapshot of `db` in `generation` that holds everything up to `txid`. */
export function snapshotKey(db: string, generation: string, txid: number): string {
  return `${generationPrefix(db, generation)}snapshots/${txidHex(txid)}.db`;
}

/** Key of the WAL segment of `db` in `generation` holding commits `firstTxid` to `lastTxid`. */
export function walSegmentKey(
  db: string,
  generation: string,
  firstTxid: number,
  lastTxid: number,
): string {
  return `${generationPrefix(db, generation)}wal/${txidHex(firstTxid)}-${txidHex(lastTxid)}.wal`;
}

/** Key of the head of `db`: where its history ends (format 3). */
export function headKey(db: string): string {
  return `${db}/head`;
}

/** Key of the lease of `db`: who may write its history (format 3). */
export function leaseKey(db: string): string {
  return `${db}/lease`;
}

/**
 * Whether `key` has the layout's shape but a txid above {@link maxTxid}: an integrity error
 * for readers, never a number to compute with.
 */
export function hasOutOfRangeTxid(key: string): boolean {
  const file = key.split("/").at(-1) ?? "";
  const digits = file.replace(/\.(db|wal)$/, "").split("-");
  return key.split("/").length === 5 && digits.every((d) => hex16.test(d)) &&
    digits.some((d) => parseInt(d, 16) > maxTxid);
}

/**
 * Parses a key written by this layout, or returns null for anything else.
 * @example
 * ```ts
 * const key = snapshotKey("app.db", generation, 42);
 * parseKey(key); // { db: "app.db", generation, kind: "snapshot", txid: 42, ... }
 * parseKey("app.db/head"); // null: not a generation's object
 * ```
 */
export function parseKey(key: string): ParsedKey | null {
  if (hasOutOfRangeTxid(key)) return null;
  const parts = key.split("/");
  if (parts.length !== 5 || parts[1] !== "generations") return null;
  const [db, , generation, dir, file] = parts;
  if (!isValidDbName(db) || !generationPattern.test(generation)) return null;
  if (dir === "snapshots" && file.endsWith(".db")) {
    const hex = file.slice(0, -3);
    if (!hex16.test(hex)) return null;
    const txid = parseInt(hex, 16);
    return { db, generation, kind: "snapshot", txid, lastTxid: txid };
  }
  if (dir === "wal" && file.endsWith(".wal")) {
    const [first, last, ...rest] = file.slice(0, -4).split("-");
    if (rest.length > 0 || !hex16.test(first ?? "") || !hex16.test(last ?? "")) return null;
    const txid = parseInt(first, 16);
    const lastTxid = parseInt(last, 16);
    if (lastTxid < txid) return null;
    return { db, generation, kind: "wal", txid, lastTxid };
  }
  return null;
}
