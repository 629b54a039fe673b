/**
 * The SQLite connections a watcher keeps open on one database: a lock connection that takes
 * the write lock briefly (snapshots, checkpoints) and never writes, and two readers, one of
 * which always holds a read transaction. While it does, no other process can restart the
 * WAL past frames not shipped yet (`docs/replication.md`); moving the held transaction from
 * one reader to the other ({@link rotateReaders}) begins the new one before ending the old,
 * so there is no gap.
 *
 * Besides SQLite, the database file and its `-shm` are read through descriptors held as long
 * as the connections (`held_file.ts`; docs/sqlite-facts.md, fact 1).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { beginRead, databaseError } from "../format/database.ts";
import { WalsyncError } from "../support/errors.ts";
import type { LogFields, Logger } from "../support/log.ts";
import { sleep } from "./locks.ts";
import { stampOf } from "./stamp.ts";
import { type HeldFile, holdFile } from "../support/held_file.ts";
import { openWalIndex, type WalIndex } from "../format/wal_index.ts";

/** Page cache of each of our connections: they only read the schema and copy snapshots. */
const connectionCacheKiB = 256;

/** The connections a watcher keeps open on one database. */
export interface Connections {
  /** The database file's path, as watch was given it. */
  path: string;
  /** Takes the write lock briefly (snapshots, checkpoints); never commits. */
  lock: DatabaseSync;
  /** Two readers; `active` holds the read transaction. */
  readers: [DatabaseSync, DatabaseSync];
  /** Which reader holds the read transaction. */
  active: 0 | 1;
  /** Inode of the database file when opened, to notice a replaced file. */
  inode: number | null;
  /** SQLite's published WAL state (the `-shm` header), open as long as the connections. */
  index: WalIndex;
  /** The database file, for snapshots read in place; held as long as the connections. */
  file: HeldFile;
}

/** Ends the read transaction of `db`, if any. */
export function endRead(db: DatabaseSync): void {
  if (db.isTransaction) db.exec("COMMIT");
}

/** The reader that does not hold the read transaction. */
export function idleReader(c: Connections): DatabaseSync {
  return c.readers[c.active === 0 ? 1 : 0];
}

/** Moves the held read transaction to the other reader: the new one first, then the old one ends. */
export function rotateReaders(c: Connections): void {
  const next = c.active === 0 ? 1 : 0;
  beginRead(c.readers[next]);
  endRead(c.readers[c.active]);
  c.active = next;
}

/** Closes every connection (rolling back what is open); null is a no-op. */
export function closeConnections(conns: Connections | null): void {
  if (!conns) return;
  for (const db of [...conns.readers, conns.lock]) {
    try {
      if (db.isTransaction) db.exec("ROLLBACK");
    } catch { /* closing anyway */ }
    try {
      db.close();
    } catch { /* already closed */ }
  }
  // After the connections: letting go may close the `-shm` and database descriptors, which
  // would drop their locks (docs/sqlite-facts.md, fact 1).
  conns.index.release();
  conns.file.release();
}

/**
 * Opens the connections on `dbPath`, switching the database to WAL mode if it is not.
 * @throws WalsyncError (kind `database`) when the file is missing, empty, not a database, or
 *   cannot be put in WAL mode.
 */
export async function openConnections(
  dbPath: string,
  logger: Logger,
  fields: LogFields,
): Promise<Connections> {
  // Checked through stat and SQLite only: another watcher of this process (a second
  // replica of the same database) may hold connections, and opening and closing a plain
  // descriptor of the file would drop their locks (docs/sqlite-facts.md, fact 1).
  const stamp = await stampOf(dbPath);
  if (stamp === null) {
    throw new WalsyncError("database", `database ${dbPath} not found; check the path`);
  }
  if (stamp.size === 0) {
    throw new WalsyncError("database", `${dbPath} is empty (0 bytes), not a SQLite database`);
  }
  // Another process may hold the database for a moment (the application's last connection
  // checkpointing as it closes, a recovery): try again, awaiting in between, rather than wait
  // in SQLite's busy handler, which would stall every other database of this process.
  for (let attempt = 1;; attempt++) {
    try {
      return openNow(dbPath, stamp.ino, logger, fields);
    } catch (err) {
      if (!isBusy(err) || attempt >= openAttempts) throw databaseError(dbPath, err);
      await sleep(Math.min(50, 2 * attempt));
    }
  }
}

/** Attempts at opening while another process holds the database (about 2 s in all). */
const openAttempts = 50;

function isBusy(err: unknown): boolean {
  return !(err instanceof WalsyncError) && /locked|busy/i.test((err as Error)?.message ?? "");
}

/**
 * Opens the connections and shares the `-shm` and the database file. Synchronous from start
 * to end: no other task of this process may close a descriptor of either between our
 * connections opening and our holding it (docs/sqlite-facts.md, fact 1). Everything opened is
 * closed on error, the held descriptors after the connections.
 */
function openNow(
  dbPath: string,
  inode: number | null,
  logger: Logger,
  fields: LogFields,
): Connections {
  // A short busy timeout: SQLite's busy handler sleeps inside a synchronous call, which
  // would stall every other database of this process; takeWriteLock() retries instead.
  const lock = new DatabaseSync(dbPath, { timeout: 5 });
  const readers: [DatabaseSync, DatabaseSync] = [
    new DatabaseSync(dbPath, { timeout: 2000 }),
    new DatabaseSync(dbPath, { timeout: 2000 }),
  ];
  let index: WalIndex | undefined;
  try {
    lock.prepare("PRAGMA schema_version").get();
    ensureWalMode(lock, dbPath, logger, fields);
    // Our connections never write, so they must never checkpoint on their own either.
    for (const db of [lock, ...readers]) {
      db.exec(`PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-${connectionCacheKiB}`);
    }
    // A read in WAL mode opens (or creates) the `-shm`.
    lock.prepare("PRAGMA schema_version").get();
    index = openIndexOf(dbPath);
    const file = holdFile(dbPath);
    return { path: dbPath, lock, readers, active: 0, inode, index, file };
  } catch (err) {
    for (const db of [...readers, lock]) {
      try {
        db.close();
      } catch { /* already closed */ }
    }
    index?.release(); // after the connections (fact 1)
    throw err;
  }
}

function openIndexOf(dbPath: string): WalIndex {
  try {
    return openWalIndex(`${dbPath}-shm`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new WalsyncError(
      "database",
      `${dbPath} has no -shm file beside it (locking_mode=EXCLUSIVE keeps it in memory); ` +
        "use the normal locking mode",
    );
  }
}

function ensureWalMode(
  lock: DatabaseSync,
  dbPath: string,
  logger: Logger,
  fields: LogFields,
): void {
  const mode = (lock.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
  if (mode === "wal") return;
  const now =
    (lock.prepare("PRAGMA journal_mode=WAL").get() as { journal_mode: string }).journal_mode;
  if (now !== "wal") {
    throw new WalsyncError(
      "database",
      `${dbPath} could not be switched to WAL mode (it is ${now}); close other connections and retry`,
    );
  }
  logger.log("INFO", "switched database to WAL mode", { ...fields, was: mode });
}

/**
 * Takes SQLite's write lock on `c.lock`, trying `attempts` times a few milliseconds apart
 * (awaiting between tries, so other databases keep being served). The caller rolls back.
 * @throws WalsyncError (kind `database`) when this process may not write the database or
 *   its `-shm`: SQLite cannot lock it then, and watch must not go on as if it had.
 */
export async function takeWriteLock(c: Connections, attempts: number): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    try {
      c.lock.exec("BEGIN IMMEDIATE");
    } catch (err) {
      if (isReadOnly(err)) throw readOnlyDatabase(c.path);
      if (!/locked|busy/i.test((err as Error).message)) throw err;
      if (i + 1 < attempts) await sleep(Math.min(50, 2 + i * 2));
      continue;
    }
    proveWriteLock(c);
    return true;
  }
  return false;
}

/**
 * Makes sure the `BEGIN IMMEDIATE` just run holds the write lock. On a database file this
 * process may only read (with its `-shm` read-only too), SQLite 3.53 starts the transaction
 * without the lock, and another process commits meanwhile (test/e2e/watch_access_test.ts);
 * only a write tells. Setting `user_version` to its own value changes page 1 in this
 * connection's cache alone: nothing reaches the WAL, since every caller rolls back.
 */
function proveWriteLock(c: Connections): void {
  try {
    const { user_version } = c.lock.prepare("PRAGMA user_version").get() as {
      user_version: number;
    };
    c.lock.exec(`PRAGMA user_version = ${Math.trunc(user_version)}`);
  } catch (err) {
    try {
      if (c.lock.isTransaction) c.lock.exec("ROLLBACK");
    } catch { /* the error below says more */ }
    if (isReadOnly(err)) throw readOnlyDatabase(c.path);
    throw err;
  }
}

function isReadOnly(err: unknown): boolean {
  return /readonly database|read-only/i.test((err as Error)?.message ?? "");
}

function readOnlyDatabase(dbPath: string): WalsyncError {
  return new WalsyncError(
    "database",
    `watch needs write access to ${dbPath} and its -wal and -shm, for SQLite's write lock ` +
      `(taken for a moment at each new generation and checkpoint); run walsync as a user who ` +
      `may write them, such as the application's`,
  );
}
