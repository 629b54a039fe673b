/**
 * Everything the wizard does outside the screen, behind one object: the real implementation
 * talks to storage and the file system; component tests pass in-memory fakes.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { openBucket, type S3Settings } from "../src/storage/bucket.ts";
import { usageError } from "../src/support/errors.ts";
import {
  listDatabases,
  type ListedDatabase,
  listRestorePoints,
  type RestorePoint,
} from "../src/ops/list.ts";
import {
  checkOutput,
  isRestoreTemp,
  restoreDatabase,
  type RestoreOptions,
  type RestoreResult,
} from "../src/ops/restore.ts";
import type { Storage } from "../src/storage/storage.ts";
import { type TableReport, tableReport } from "./table_report.ts";

/** What the wizard needs from the world. */
export interface WizardServices {
  /** Opens the storage a `--bucket` value names and checks that it is reachable. */
  openStorage(bucket: string): Promise<Storage>;
  /** Databases in the bucket, each with its newest snapshot's digest. */
  listDatabases(storage: Storage): Promise<ListedDatabase[]>;
  /** Every restorable point of one database. */
  listRestorePoints(storage: Storage, db: string): Promise<RestorePoint[]>;
  /**
   * Checks an output path: resolves with the files a restore there would replace (empty when
   * none), throws a `WalsyncError` when the path cannot be used at all.
   */
  probeOutput(path: string): Promise<string[]>;
  /** Restores; resolves only after every checksum and `integrity_check` passed. */
  restore(storage: Storage, db: string, options: RestoreOptions): Promise<RestoreResult>;
  /** Row counts of the largest tables of a restored file. */
  inspect(path: string): Promise<TableReport>;
  /** Deletes a file the wizard itself just created (a restore that finished after a cancel). */
  discard(path: string): Promise<void>;
  /**
   * Deletes the temporary files a restore into `output` is writing (used when the operator
   * will not wait for a stuck restore to stop by itself); returns the paths removed.
   */
  sweep(output: string): Promise<string[]>;
  /** The current time (fixed in tests so default file names are predictable). */
  now(): Date;
}

/** The files that stand for a database at `path`, in the order `checkOutput` checks them. */
function databaseFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-journal`];
}

/** Services backed by real storage, the real restore and the local file system. */
export function realServices(settings: S3Settings): WizardServices {
  return {
    async openStorage(bucket) {
      const storage = await openBucket(bucket, settings);
      try {
        await storage.check();
      } catch (err) {
        storage.close();
        throw err;
      }
      return storage;
    },
    listDatabases: (storage) => listDatabases(storage, { checksums: true }),
    listRestorePoints: (storage, db) => listRestorePoints(storage, db),
    async probeOutput(path) {
      const absolute = resolve(path);
      const existing: string[] = [];
      for (const file of databaseFiles(absolute)) {
        try {
          const stat = await Deno.lstat(file);
          if (stat.isDirectory && file === absolute) {
            throw usageError(`${absolute} is a directory; give a file path`);
          }
          existing.push(file);
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      }
      // The restore's own check has the last word (directory missing, not a directory, ...);
      // with force it passes existing files, which the operator is asked about separately.
      await checkOutput(absolute, true).catch((err) => {
        throw err instanceof Error && /does not exist/.test(err.message)
          ? usageError(
            `directory ${dirname(absolute)} does not exist; create it or choose another path`,
          )
          : err;
      });
      return existing;
    },
    restore: restoreDatabase,
    inspect: (path) => Promise.resolve().then(() => tableReport(path)),
    async discard(path) {
      await Deno.remove(path).catch(() => {});
    },
    async sweep(output) {
      const absolute = resolve(output);
      const removed: string[] = [];
      for await (const entry of Deno.readDir(dirname(absolute))) {
        const name = entry.name;
        if (!entry.isFile || !isRestoreTemp(name, absolute)) continue;
        const path = join(dirname(absolute), name);
        await Deno.remove(path).then(() => removed.push(path), () => {});
      }
      return removed;
    },
    now: () => new Date(),
  };
}
