/**
 * A consistent full copy of a live database, uploaded as the first object of a new generation.
 *
 * The database is read in place under one held read transaction (`snapshot_image.ts`), so
 * writers in other processes go on and the bytes are one committed state: read once for the
 * SHA256 (it must be in the object's metadata, which S3 takes before the body), once for the
 * upload. Where that is not possible, SQLite's backup API copies the pages into a temporary
 * file first, under one read transaction too.
 * @module
 */
import { basename, join } from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { checkSourceDatabase, databaseError, readDatabaseHeader } from "../format/database.ts";
import { usageError } from "../support/errors.ts";
import { createHistoryWriter } from "../history/writer.ts";
import {
  invalidNameMessage,
  isValidDbName,
  meta,
  newGenerationId,
  snapshotKey,
} from "../format/layout.ts";
import { type ByteSource, fileSource } from "../support/hash.ts";
import { putSourceObject } from "../storage/object.ts";
import { ImageUnavailable, openSnapshotImage } from "../format/snapshot_image.ts";
import { checkFreeSpace } from "../storage/transfer/disk.ts";
import type { Storage } from "../storage/storage.ts";
import { retriesSoFar } from "../storage/transfer/retry.ts";

/** What a snapshot wrote. */
export interface SnapshotResult {
  /** Database name in the bucket. */
  db: string;
  /** New generation id. */
  generation: string;
  /** Storage key of the snapshot. */
  key: string;
  /** Its position in the database's history. */
  txid: number;
  /** Hex SHA256 of the snapshot bytes. */
  sha256: string;
  /** Bytes uploaded. */
  size: number;
  /** Page size of the database. */
  pageSize: number;
  /** Pages in the snapshot. */
  pageCount: number;
  /** When it was taken. */
  created: string;
  /** Uploads (or parts) sent again after the server rejected them or a connection failed. */
  retries: number;
}

/** Options for {@link takeSnapshot}. */
export interface SnapshotOptions {
  /** Name to store the database under; defaults to the file name of `dbPath`. */
  name?: string;
  /** Called with the bytes uploaded so far. */
  onBytes?: (done: number, total: number) => void;
  /** Take the history's lease even when a running `watch` holds it. */
  takeover?: boolean;
}

/** Copies a live database into a temporary file with SQLite's backup API. */
export async function copyDatabase(dbPath: string, destination: string): Promise<void> {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(dbPath, { readOnly: true, timeout: 10_000 });
    // One step (no rate) so that writers in other processes cannot restart the copy.
    await backup(db, destination, { rate: -1 });
  } catch (err) {
    throw databaseError(dbPath, err);
  } finally {
    db?.close();
  }
}

/** A consistent state of the database to upload, and how to let go of it. */
interface SnapshotBody {
  source: ByteSource;
  pageSize: number;
  pageCount: number;
  close(): Promise<void>;
}

/**
 * The database's bytes as one committed state: read in place under a held read transaction
 * (no copy) where that is possible, else copied with SQLite's backup API into a temporary
 * file first (a WAL database without a `-shm`, as under `locking_mode=EXCLUSIVE`).
 */
async function openSnapshotBody(dbPath: string): Promise<SnapshotBody> {
  try {
    const image = await openSnapshotImage(dbPath);
    return { source: image, ...image, close: () => Promise.resolve(image.close()) };
  } catch (err) {
    if (!(err instanceof ImageUnavailable)) throw err;
  }
  const tempDir = await Deno.makeTempDir({ prefix: "walsync-snapshot-" });
  const removeTemp = () => Deno.remove(tempDir, { recursive: true }).catch(() => {});
  try {
    // The copy is as large as the database file: refuse with the numbers rather than fill
    // the disk.
    await checkFreeSpace(tempDir, (await Deno.stat(dbPath)).size, "snapshot's temporary copy");
    const copy = join(tempDir, "snapshot.db");
    await copyDatabase(dbPath, copy);
    // The copy's header, not the source's: a VACUUM may have changed the page size meanwhile.
    const header = await readDatabaseHeader(copy);
    const source = await fileSource(copy);
    return {
      source,
      pageSize: header.pageSize,
      pageCount: Math.floor(source.size / header.pageSize),
      close: async () => {
        source.close();
        await removeTemp();
      },
    };
  } catch (err) {
    await removeTemp();
    throw err;
  }
}

/**
 * Takes a snapshot of `dbPath` and uploads it as a new generation.
 *
 * @example
 * ```ts
 * const storage = await openBucket("s3://backups/prod");
 * const result = await takeSnapshot(storage, "/var/lib/app/app.db");
 * console.log(result.key, result.sha256);
 * ```
 */
export async function takeSnapshot(
  storage: Storage,
  dbPath: string,
  options: SnapshotOptions = {},
): Promise<SnapshotResult> {
  const db = options.name ?? basename(dbPath);
  const retriesBefore = retriesSoFar();
  if (!isValidDbName(db)) throw usageError(invalidNameMessage(db));
  await checkSourceDatabase(dbPath);
  // A snapshot starts a generation of the history: only the lease holder may (issue 11).
  const history = createHistoryWriter(storage, db, { takeover: options.takeover });
  await history.acquire();
  let body: SnapshotBody | undefined;
  try {
    body = await openSnapshotBody(dbPath);
    const { source, pageSize, pageCount } = body;
    const start = await history.startGeneration();
    const txid = start.txid;
    const generation = newGenerationId();
    const key = snapshotKey(db, generation, txid);
    const created = new Date().toISOString();
    const written = await putSourceObject(storage, key, source, {
      ...start.metadata,
      [meta.kind]: "snapshot",
      [meta.db]: db,
      [meta.generation]: generation,
      [meta.txid]: String(txid),
      [meta.created]: created,
      [meta.pageSize]: String(pageSize),
      [meta.pageCount]: String(pageCount),
    }, {
      finishMetadata: (metadata) => history.sign(key, metadata),
      onBytes: (done) => options.onBytes?.(done, source.size),
    });
    await history.advance({ txid, key, sha256: written.sha256 });
    return {
      db,
      generation,
      key,
      txid,
      sha256: written.sha256,
      size: written.size,
      pageSize,
      pageCount,
      created,
      retries: retriesSoFar() - retriesBefore,
    };
  } finally {
    await body?.close();
    await history.release();
  }
}
