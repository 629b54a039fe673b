/**
 * What a bucket holds for each database, read from object keys alone (one LIST, no GETs).
 * @module
 */
import { integrityError } from "../support/errors.ts";
import {
  dbPrefix,
  generationTime,
  hasOutOfRangeTxid,
  maxTxid as txidLimit,
  parseKey,
} from "../format/layout.ts";
import type { ObjectInfo, Storage } from "../storage/storage.ts";

/** One object of a generation, as listed. */
export interface CatalogObject {
  /** Storage key. */
  key: string;
  /** Snapshot: the txid it holds; segment: its first txid. */
  txid: number;
  /** Snapshot: the same as `txid`; segment: its last txid. */
  lastTxid: number;
  /** Stored size. */
  size: number;
  /** When storage wrote it, if it says. */
  lastModified?: Date;
}

/** One generation: a snapshot lineage that WAL segments continue. */
export interface Generation {
  /** Generation id (sorts by start time). */
  id: string;
  /** When the generation started, from its id. */
  started: Date;
  /** Snapshots, by txid. */
  snapshots: CatalogObject[];
  /** WAL segments, by first txid. */
  segments: CatalogObject[];
}

/** Everything a bucket holds for one database. */
export interface DatabaseCatalog {
  /** Database name. */
  db: string;
  /** Generations, oldest first. */
  generations: Generation[];
  /** Keys under the database's prefix that this layout does not know (left alone, reported by verify). */
  unknown: string[];
  /** Of those, keys shaped like the layout's but with a txid above 2^53 − 1 (integrity errors). */
  outOfRange?: string[];
}

function byTxid(a: CatalogObject, b: CatalogObject): number {
  return a.txid - b.txid;
}

function addObject(catalog: DatabaseCatalog, info: ObjectInfo): void {
  const parsed = parseKey(info.key);
  if (!parsed) {
    catalog.unknown.push(info.key);
    if (hasOutOfRangeTxid(info.key)) (catalog.outOfRange ??= []).push(info.key);
    return;
  }
  let generation = catalog.generations.find((g) => g.id === parsed.generation);
  if (!generation) {
    generation = {
      id: parsed.generation,
      started: generationTime(parsed.generation),
      snapshots: [],
      segments: [],
    };
    catalog.generations.push(generation);
  }
  const object = {
    key: info.key,
    txid: parsed.txid,
    lastTxid: parsed.lastTxid,
    size: info.size,
    lastModified: info.lastModified,
  };
  (parsed.kind === "snapshot" ? generation.snapshots : generation.segments).push(object);
}

function finish(catalog: DatabaseCatalog): DatabaseCatalog {
  catalog.generations.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const g of catalog.generations) {
    g.snapshots.sort(byTxid);
    g.segments.sort(byTxid);
  }
  return catalog;
}

/**
 * Lists what the bucket holds for one database.
 * @example
 * ```ts
 * const catalog = await readCatalog(storage, "app.db");
 * for (const g of catalog.generations) {
 *   console.log(g.id, g.snapshots.length, "snapshots", g.segments.length, "segments");
 * }
 * ```
 */
export async function readCatalog(storage: Storage, db: string): Promise<DatabaseCatalog> {
  const catalog: DatabaseCatalog = { db, generations: [], unknown: [] };
  for await (const info of storage.list(dbPrefix(db))) addObject(catalog, info);
  return finish(catalog);
}

/** Lists every database in the bucket. Keys outside the layout are ignored. */
export async function readAllCatalogs(storage: Storage): Promise<DatabaseCatalog[]> {
  const byDb = new Map<string, DatabaseCatalog>();
  for await (const info of storage.list("")) {
    const parsed = parseKey(info.key);
    if (!parsed) continue;
    let catalog = byDb.get(parsed.db);
    if (!catalog) {
      catalog = { db: parsed.db, generations: [], unknown: [] };
      byDb.set(parsed.db, catalog);
    }
    addObject(catalog, info);
  }
  return [...byDb.values()].map(finish).sort((a, b) => (a.db < b.db ? -1 : 1));
}

/** Highest txid a generation reaches, by its keys. */
export function lastKnownTxid(generation: Generation): number {
  const snap = generation.snapshots.at(-1)?.lastTxid ?? -1;
  const seg = generation.segments.at(-1)?.lastTxid ?? -1;
  return Math.max(snap, seg);
}

/** Highest txid in any generation, or -1 for none. */
export function maxTxid(catalog: DatabaseCatalog): number {
  return Math.max(-1, ...catalog.generations.map(lastKnownTxid));
}

/** Throws an integrity error naming the first key whose txid is beyond what can be represented. */
export function checkTxidRange(catalog: DatabaseCatalog): void {
  const bad = catalog.outOfRange?.[0];
  if (bad !== undefined) {
    throw integrityError(
      bad,
      "txid in the key is beyond 2^53 - 1 (not written by Walsync; remove the object)",
    );
  }
}

/**
 * The txid a new generation of `db` starts at in a bucket without a head (format 2): one past
 * the highest the bucket holds. A key with a txid past 2^53 − 1 is an integrity error.
 */
export async function nextTxid(storage: Storage, db: string): Promise<number> {
  const catalog = await readCatalog(storage, db);
  checkTxidRange(catalog);
  const next = maxTxid(catalog) + 1;
  if (next > txidLimit) throw integrityError(dbPrefix(db), "txids are exhausted");
  return next;
}
