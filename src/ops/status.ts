/**
 * Status: per database in a bucket, the last snapshot, the last shipped position, how long ago
 * that was, and whether the chain of objects is continuous — from one listing, or (deep) by
 * reading every object like `verify`.
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
import type { Storage } from "../storage/storage.ts";
import { verifyDatabase } from "./verify.ts";
import { type LagKnown, localLag } from "./status_local.ts";
import type { Head } from "../history/head.ts";

/** The status of one database's backup. */
export interface DatabaseStatus {
  /** Database name. */
  name: string;
  /** Generations stored. */
  generations: number;
  /** Newest generation id. */
  generation?: string;
  /** Highest txid shipped. */
  latestTxid: number;
  /** When the newest object was written (ISO 8601), if storage says. */
  lastUpdate?: string;
  /** Seconds since then, or null when unknown (the age of the newest object, not the lag). */
  lastUpdateAgeSeconds: number | null;
  /**
   * The age of the oldest local commit not in storage: needs the local database (`--db`);
   * null without it.
   */
  lagSeconds: number | null;
  /** `exact`, `at-least` (a lower bound), or `unknown` (no local database given). */
  lagKnown: LagKnown;
  /** Whether a local commit is known to be missing from storage (with `--db`). */
  behind?: boolean;
  /** How the lag was found, one line. */
  lagReason: string;
  /** When the newest snapshot was written. */
  lastSnapshot?: string;
  /** Whether every generation's objects form an unbroken chain (and, deep, every object verifies). */
  chainOk: boolean;
  /** What is wrong, one line each. */
  problems: string[];
}

/** Problems in the shape of a catalog: generations without snapshots, gaps between segments. */
export function chainProblems(catalog: DatabaseCatalog): string[] {
  const problems: string[] = [];
  for (const g of catalog.generations) {
    if (g.snapshots.length === 0) {
      problems.push(`generation ${g.id} has no snapshot`);
      continue;
    }
    let expected = g.snapshots[0].txid + 1;
    for (const s of g.segments) {
      if (s.lastTxid < expected) continue;
      if (s.txid !== expected) {
        problems.push(`gap before ${s.key}: expected txid ${expected}, found ${s.txid}`);
      }
      expected = s.lastTxid + 1;
    }
  }
  for (const key of catalog.unknown) problems.push(`unexpected object ${key}`);
  return problems;
}

/**
 * Status of every database (or one) in a bucket.
 * @example
 * ```ts
 * const [status] = await bucketStatus(storage, { db: "app.db", localPath: "/srv/app.db" });
 * console.log(status.latestTxid, status.generation);
 * ```
 */
export async function bucketStatus(
  storage: Storage,
  options: { db?: string; deep?: boolean; nowMs?: number; localPath?: string } = {},
): Promise<DatabaseStatus[]> {
  const now = options.nowMs ?? Date.now();
  const catalogs = options.db
    ? [await readCatalog(storage, options.db)]
    : await readAllCatalogs(storage);
  // Asked about one database that has no backup here: not a healthy status (as in verify).
  if (options.db && catalogs[0].generations.length === 0) {
    throw new WalsyncError(
      "failure",
      `no backup of ${options.db} found in this bucket; check the database name and --bucket (walsync list shows what is there)`,
    );
  }
  const result: DatabaseStatus[] = [];
  for (const listed of catalogs) {
    if (listed.generations.length === 0) continue;
    // What the head reaches (format 3); a history that cannot be walked is a problem to show.
    let catalog = listed;
    let walkProblem: string | undefined;
    let head: Head | undefined;
    try {
      const history = await readHistory(storage, listed.db, { catalog: listed });
      catalog = history.catalog;
      head = history.head;
    } catch (err) {
      if (!(err instanceof WalsyncError) || err.kind !== "integrity") throw err;
      walkProblem = err.message;
    }
    const objects = catalog.generations.flatMap((g) => [...g.snapshots, ...g.segments]);
    const last = Math.max(0, ...objects.map((o) => o.lastModified?.getTime() ?? 0));
    const snapshots = catalog.generations.flatMap((g) => g.snapshots);
    const lastSnap = Math.max(0, ...snapshots.map((o) => o.lastModified?.getTime() ?? 0));
    const problems = chainProblems(catalog);
    // A gap the listing shows already names the problem; the walk adds what only it sees.
    if (walkProblem && problems.length === 0) problems.push(walkProblem);
    if (options.deep) {
      const report = await verifyDatabase(storage, catalog.db);
      for (const f of report.failures) {
        const line = `${f.key}: ${f.problem}`;
        if (!problems.some((p) => p.includes(f.key))) problems.push(line);
      }
    }
    const local = options.localPath
      ? await localLag(storage, options.localPath, head, last, now)
      : {
        lagSeconds: null,
        lagKnown: "unknown" as const,
        behind: undefined,
        reason: "lag needs the local database path (--db)",
      };
    result.push({
      name: catalog.db,
      generations: catalog.generations.length,
      generation: catalog.generations.at(-1)?.id,
      latestTxid: Math.max(...catalog.generations.map(lastKnownTxid)),
      lastUpdate: last > 0 ? new Date(last).toISOString() : undefined,
      lastUpdateAgeSeconds: last > 0 ? Math.max(0, (now - last) / 1000) : null,
      lagSeconds: local.lagSeconds,
      lagKnown: local.lagKnown,
      ...(local.behind !== undefined ? { behind: local.behind } : {}),
      lagReason: local.reason,
      lastSnapshot: lastSnap > 0 ? new Date(lastSnap).toISOString() : undefined,
      chainOk: problems.length === 0,
      problems,
    });
  }
  return result;
}
