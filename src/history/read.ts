/**
 * The reading side of a history: what every reader (`restore`, `verify`, `status`, `list`,
 * `replicate`, the wizard) plans over. A format 3 bucket is walked back from its head and only
 * what the head reaches counts; a format 1/2 bucket is the listing, as before.
 *
 * @example
 * ```ts
 * const history = await readHistory(storage, "app.db");
 * const plan = planRestore(history.catalog);
 * ```
 * @module
 */
import {
  type CatalogObject,
  checkTxidRange,
  type DatabaseCatalog,
  readCatalog,
} from "./catalog.ts";
import { integrityError } from "../support/errors.ts";
import { headKey, leaseKey, meta } from "../format/layout.ts";
import type { Storage } from "../storage/storage.ts";
import { checkHeadSignature, type Head, readHead } from "./head.ts";
import { checkObjectSignature, type SigningKey, signingKeyFrom } from "./sign.ts";
import { anchorCatalog, type SnapshotLink } from "./walk.ts";

/** A database's history as readers see it. */
export interface History {
  /** 3 when anchored by a head; 2 for buckets written before heads existed. */
  format: 2 | 3;
  /** The objects of the history (format 3: only those the head reaches). */
  catalog: DatabaseCatalog;
  /** The head (format 3). */
  head?: Head;
  /** Listed objects the head does not reach (format 3). */
  unreached: CatalogObject[];
  /** The last object of each reached generation and the digest the history promises for it. */
  ends: Map<string, string>;
  /** Whether the head is signed. */
  signed: boolean;
  /** Whether signatures were checked (a key is set). */
  signatureChecked: boolean;
  /** The signing key in use, if any (to check each object as it is read). */
  signing?: SigningKey;
}

/** Options for {@link readHistory}. */
export interface ReadHistoryOptions {
  /**
   * An already-listed catalog of the database (saves a LIST). It was listed before the head is
   * read here, so it is listed again when it lacks the head's object: shipped in between.
   */
  catalog?: DatabaseCatalog;
  /** Signing key; `WALSYNC_SIGNING_KEY` by default. */
  signing?: SigningKey;
}

/**
 * Whether a database without a head still holds a format 3 history (its head was deleted):
 * a lease, or any generation's first snapshot written as format 3.
 */
export async function isFormat3(
  storage: Storage,
  catalog: DatabaseCatalog,
  options: { lease?: boolean } = {},
): Promise<boolean> {
  if ((options.lease ?? true) && await storage.readTagged(leaseKey(catalog.db))) return true;
  for (const g of [...catalog.generations].reverse()) {
    const first = g.snapshots[0];
    if (!first) continue;
    const info = await storage.head(first.key);
    if (Number(info?.metadata[meta.format] ?? 0) >= 3) return true;
  }
  return false;
}

/** Whether `catalog` lists `key` among its snapshots and segments. */
function listsKey(catalog: DatabaseCatalog, key: string): boolean {
  return catalog.generations.some((g) =>
    g.snapshots.some((o) => o.key === key) || g.segments.some((o) => o.key === key)
  );
}

/** Reads a history: the head first, then the listing (so the head never names an unlisted object). */
export async function readHistory(
  storage: Storage,
  db: string,
  options: ReadHistoryOptions = {},
): Promise<History> {
  const signing = options.signing ?? signingKeyFrom();
  const stored = await readHead(storage, db);
  let catalog = options.catalog ?? await readCatalog(storage, db);
  // A listing older than the head (`status` and `list` list every database first) misses what
  // a running watch shipped since. Everything the head reaches was written before it, so one
  // listing after the head sees it all; without this, a live bucket read as a broken chain.
  if (options.catalog && stored && !listsKey(catalog, stored.head.key)) {
    catalog = await readCatalog(storage, db);
  }
  if (!stored) {
    if (catalog.generations.length > 0 && await isFormat3(storage, catalog)) {
      throw integrityError(
        headKey(db),
        "head is missing: this database's history cannot be trusted to end where the listing does; restore the head object from a copy, or start a new history with walsync watch",
      );
    }
    checkTxidRange(catalog);
    return {
      format: 2,
      catalog,
      unreached: [],
      ends: new Map(),
      signed: false,
      signatureChecked: false,
      signing,
    };
  }
  const signed = checkHeadSignature(stored.head, signing);
  const linkOf = async (snapshot: CatalogObject): Promise<SnapshotLink | null> => {
    const info = await storage.head(snapshot.key);
    if (!info) throw integrityError(snapshot.key, "object is missing");
    const format = Number(info.metadata[meta.format] ?? 1);
    if (format >= 3) checkObjectSignature(snapshot.key, info.metadata, signing);
    return {
      format,
      prevKey: info.metadata[meta.prevKey] ?? "",
      prevSha256: info.metadata[meta.prevSha256] ?? "",
    };
  };
  const anchored = await anchorCatalog(catalog, stored.head, stored.lastModified, linkOf);
  return {
    format: 3,
    catalog: anchored.catalog,
    head: stored.head,
    unreached: anchored.unreached,
    ends: new Map(anchored.ends.map((e) => [e.key, e.sha256])),
    signed,
    signatureChecked: signing !== undefined,
    signing,
  };
}
