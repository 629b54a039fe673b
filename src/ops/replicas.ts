/**
 * Restoring when a database has several replicas: the newest intact one wins. Replicas are
 * tried newest first: by when each last received an object (to the second, the precision S3
 * gives), then by the highest txid each holds. Txids alone cannot decide: each bucket numbers
 * its own, and every new generation starts one past the bucket's highest, so a replica whose
 * watcher restarted more often counts higher for the same commits. One whose objects fail
 * their checks, or that cannot be reached, is skipped with a note and the next one is tried.
 * @module
 */
import { type DatabaseCatalog, maxTxid } from "../history/catalog.ts";
import { readHistory } from "../history/read.ts";
import { WalsyncError } from "../support/errors.ts";
import { restoreDatabase, type RestoreOptions, type RestoreResult } from "./restore.ts";
import type { Storage } from "../storage/storage.ts";

/** A replica that was passed over, and why. */
export interface SkippedReplica {
  /** Where it lives. */
  location: string;
  /** What went wrong. */
  reason: string;
}

/** A restore that chose among replicas. */
export interface ReplicaRestoreResult extends RestoreResult {
  /** The replica the database came from. */
  replica: string;
  /** Replicas tried first that failed. */
  skipped: SkippedReplica[];
}

/** When the replica last received an object of the catalog, in whole seconds (0 if unknown). */
function lastUploadSecond(catalog: DatabaseCatalog): number {
  let newest = 0;
  for (const g of catalog.generations) {
    for (const o of [...g.snapshots, ...g.segments]) {
      newest = Math.max(newest, o.lastModified?.getTime() ?? 0);
    }
  }
  return Math.floor(newest / 1000);
}

/**
 * Restores `db` from the newest replica that passes every check.
 * @example
 * ```ts
 * const replicas = [await openBucket("s3://primary/prod"), await openBucket("/mnt/backup")];
 * const result = await restoreFromReplicas(replicas, "app.db", { output: "/tmp/app.db" }, (skip) =>
 *   console.error("skipped", skip));
 * ```
 */
export async function restoreFromReplicas(
  replicas: Storage[],
  db: string,
  options: RestoreOptions,
  onSkip: (skipped: SkippedReplica) => void = () => {},
): Promise<ReplicaRestoreResult> {
  const ranked: { storage: Storage; newest: number; uploaded: number }[] = [];
  const skipped: SkippedReplica[] = [];
  let last: unknown = new WalsyncError("failure", `no replica holds a backup of ${db}`);
  const skip = (location: string, err: unknown) => {
    const entry = { location, reason: err instanceof Error ? err.message : String(err) };
    skipped.push(entry);
    onSkip(entry);
  };
  for (const storage of replicas) {
    try {
      // What the head reaches (format 3), so a replica is ranked by its anchored history.
      const catalog = (await readHistory(storage, db, { signing: options.signing })).catalog;
      ranked.push({ storage, newest: maxTxid(catalog), uploaded: lastUploadSecond(catalog) });
    } catch (err) {
      if (!(err instanceof WalsyncError)) throw err;
      // When no replica can be read at all, say why (exit 3), not "no backup" (exit 1).
      last = err;
      skip(storage.location, err);
    }
  }
  ranked.sort((a, b) => b.uploaded - a.uploaded || b.newest - a.newest);
  for (const { storage, newest } of ranked) {
    if (newest < 0) continue;
    try {
      const result = await restoreDatabase(storage, db, options);
      return { ...result, replica: storage.location, skipped };
    } catch (err) {
      // Usage errors (the output exists, a bad target) are the same on every replica.
      if (!(err instanceof WalsyncError) || err.kind === "usage") throw err;
      last = err;
      skip(storage.location, err);
    }
  }
  throw last;
}
