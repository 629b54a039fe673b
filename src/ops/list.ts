/**
 * List: what databases a bucket holds, each with its newest snapshot and how far its WAL reaches.
 * @module
 */
import {
  type DatabaseCatalog,
  lastKnownTxid,
  readAllCatalogs,
  readCatalog,
} from "../history/catalog.ts";
import { WalsyncError } from "../support/errors.ts";
import { readHistory } from "../history/read.ts";
import { meta } from "../format/layout.ts";
import type { Storage } from "../storage/storage.ts";

/** One backed-up database. */
export interface ListedDatabase {
  /** Database name. */
  name: string;
  /** Generations stored. */
  generations: number;
  /** Snapshots stored, in all generations. */
  snapshots: number;
  /** WAL segments stored, in all generations. */
  segments: number;
  /** Highest txid stored. */
  latestTxid: number;
  /** The newest snapshot. */
  latestSnapshot: {
    key: string;
    generation: string;
    txid: number;
    size: number;
    created: string;
    sha256?: string;
  } | null;
  /** When the newest object (snapshot or segment) was written, if storage says. */
  lastUpdate?: string;
  /** Why the history could not be walked from its head (integrity), when that is the case. */
  problem?: string;
}

/**
 * The objects of a database's history: what its head reaches (format 3), or the listing. An
 * integrity problem is thrown for one database and returned beside the raw listing for many.
 */
async function anchored(
  storage: Storage,
  catalog: DatabaseCatalog,
  many: boolean,
): Promise<{ catalog: DatabaseCatalog; problem?: string }> {
  try {
    return { catalog: (await readHistory(storage, catalog.db, { catalog })).catalog };
  } catch (err) {
    if (!many || !(err instanceof WalsyncError) || err.kind !== "integrity") throw err;
    return { catalog, problem: err.message };
  }
}

/** A restorable point of one database. */
export interface RestorePoint {
  /** Generation id. */
  generation: string;
  /** `snapshot` or `wal`. */
  kind: "snapshot" | "wal";
  /** Storage key. */
  key: string;
  /** First txid of the object. */
  txidFirst: number;
  /** Last txid the object brings the database to. */
  txidLast: number;
  /** Bytes stored. */
  size: number;
  /** When it was written. */
  time?: string;
  /** Hex SHA256 from metadata (only with checksums). */
  sha256?: string;
}

/**
 * Lists the databases in a bucket; with `checksums`, the newest snapshot's digest too.
 * @example
 * ```ts
 * for (const db of await listDatabases(storage)) {
 *   console.log(db.name, db.generations, "generations, latest txid", db.latestTxid);
 * }
 * ```
 */
export async function listDatabases(
  storage: Storage,
  options: { checksums?: boolean; db?: string } = {},
): Promise<ListedDatabase[]> {
  const catalogs = options.db
    ? [await readCatalog(storage, options.db)]
    : await readAllCatalogs(storage);
  const result: ListedDatabase[] = [];
  for (const listed of catalogs) {
    if (listed.generations.length === 0) continue;
    const { catalog, problem } = await anchored(storage, listed, !options.db);
    const withSnapshots = catalog.generations.filter((g) => g.snapshots.length > 0);
    const newestGen = withSnapshots.at(-1);
    const newest = newestGen?.snapshots.at(-1);
    let latestSnapshot: ListedDatabase["latestSnapshot"] = null;
    if (newestGen && newest) {
      const info = await storage.head(newest.key);
      latestSnapshot = {
        key: newest.key,
        generation: newestGen.id,
        txid: newest.txid,
        size: newest.size,
        created: info?.metadata[meta.created] ?? newest.lastModified?.toISOString() ?? "",
        sha256: options.checksums ? info?.metadata[meta.sha256] ?? "(missing)" : undefined,
      };
    }
    const all = catalog.generations.flatMap((g) => [...g.snapshots, ...g.segments]);
    const lastTime = Math.max(...all.map((o) => o.lastModified?.getTime() ?? 0));
    result.push({
      name: catalog.db,
      generations: catalog.generations.length,
      snapshots: catalog.generations.reduce((n, g) => n + g.snapshots.length, 0),
      segments: catalog.generations.reduce((n, g) => n + g.segments.length, 0),
      latestTxid: Math.max(...catalog.generations.map(lastKnownTxid)),
      latestSnapshot,
      lastUpdate: lastTime > 0 ? new Date(lastTime).toISOString() : undefined,
      ...(problem ? { problem } : {}),
    });
  }
  return result;
}

/** Every restorable point of one database: each snapshot and the end of each segment. */
export async function listRestorePoints(
  storage: Storage,
  db: string,
  options: { checksums?: boolean } = {},
): Promise<RestorePoint[]> {
  const catalog = (await readHistory(storage, db)).catalog;
  const points: RestorePoint[] = [];
  for (const g of catalog.generations) {
    for (const [kind, objects] of [["snapshot", g.snapshots], ["wal", g.segments]] as const) {
      for (const o of objects) {
        const info = options.checksums ? await storage.head(o.key) : null;
        points.push({
          generation: g.id,
          kind,
          key: o.key,
          txidFirst: o.txid,
          txidLast: o.lastTxid,
          size: o.size,
          time: info?.metadata[meta.created] ?? o.lastModified?.toISOString(),
          sha256: options.checksums ? info?.metadata[meta.sha256] ?? "(missing)" : undefined,
        });
      }
    }
  }
  points.sort((a, b) =>
    a.generation < b.generation
      ? -1
      : a.generation > b.generation
      ? 1
      : a.txidLast - b.txidLast || (a.kind === "snapshot" ? -1 : 1)
  );
  return points;
}
