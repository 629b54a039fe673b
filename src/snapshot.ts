/**
 * A consistent full copy of a live database, uploaded as the first object of a new generation.
 *
 * SQLite's backup API (over `node:sqlite`) copies the pages under one read transaction, so
 * writers in other processes go on and the copy is one committed state. The copy goes to a
 * temporary file first: the object's SHA256 has to be known before its upload starts, and
 * the live database file must not be opened a second time by this process (SQLITE-FACTS 1).
 * @module
 */
import { basename, join } from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { checkSourceDatabase, databaseError, readDatabaseHeader } from "./database.ts";
import { usageError } from "./errors.ts";
import { createHistoryWriter } from "./history/writer.ts";
import { invalidNameMessage, isValidDbName, meta, newGenerationId, snapshotKey } from "./layout.ts";
import { putFileObject } from "./object.ts";
import type { Storage } from "./storage.ts";
import { retriesSoFar } from "./transfer/retry.ts";

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

/** Takes a snapshot of `dbPath` and uploads it as a new generation. */
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
  const tempDir = await Deno.makeTempDir({ prefix: "walsync-snapshot-" });
  try {
    const copy = join(tempDir, "snapshot.db");
    await copyDatabase(dbPath, copy);
    // The copy's header, not the source's: a VACUUM may have changed the page size meanwhile.
    const header = await readDatabaseHeader(copy);
    const size = (await Deno.stat(copy)).size;
    const start = await history.startGeneration();
    const txid = start.txid;
    const generation = newGenerationId();
    const key = snapshotKey(db, generation, txid);
    const created = new Date().toISOString();
    const pageCount = Math.floor(size / header.pageSize);
    const written = await putFileObject(
      storage,
      key,
      copy,
      await history.signFile(key, copy, {
        ...start.metadata,
        [meta.kind]: "snapshot",
        [meta.db]: db,
        [meta.generation]: generation,
        [meta.txid]: String(txid),
        [meta.created]: created,
        [meta.pageSize]: String(header.pageSize),
        [meta.pageCount]: String(pageCount),
      }),
      (done) => options.onBytes?.(done, size),
    );
    await history.advance({ txid, key, sha256: written.sha256 });
    return {
      db,
      generation,
      key,
      txid,
      sha256: written.sha256,
      size: written.size,
      pageSize: header.pageSize,
      pageCount,
      created,
      retries: retriesSoFar() - retriesBefore,
    };
  } finally {
    await history.release();
    await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  }
}
