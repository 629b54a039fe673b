/**
 * Checks on database files, done before SQLite opens them, so that an operator's typo is a
 * one-line error (exit 4) rather than an empty backup.
 *
 * Read `docs/sqlite-facts.md` fact 1 before adding a `Deno.open` of a database file here:
 * these functions run only while this process holds no SQLite connection to that file.
 * @module
 */
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { WalsyncError } from "../support/errors.ts";

/** The 16 bytes every SQLite database file starts with. */
export const sqliteMagic = new TextEncoder().encode("SQLite format 3\0");

/** Facts from a SQLite database header. */
export interface DatabaseHeader {
  /** Page size in bytes. */
  pageSize: number;
  /** 1 = rollback journal, 2 = WAL (the file format write version). */
  writeVersion: number;
}

/** Parses the first 100 bytes of a database file; returns null when they are not a SQLite header. */
export function parseDatabaseHeader(bytes: Uint8Array): DatabaseHeader | null {
  if (bytes.byteLength < 100) return null;
  for (let i = 0; i < sqliteMagic.length; i++) if (bytes[i] !== sqliteMagic[i]) return null;
  const raw = (bytes[16] << 8) | bytes[17];
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
  return { pageSize, writeVersion: bytes[18] };
}

/**
 * Makes sure `path` is an existing SQLite database file; throws a `database` error (exit 4)
 * naming the problem otherwise.
 * @example
 * ```ts
 * const header = await checkSourceDatabase("app.db"); // exit 4 with a one-line reason if not
 * console.log(header.pageSize, header.writeVersion === 2 ? "WAL" : "rollback journal");
 * ```
 */
export async function checkSourceDatabase(path: string): Promise<DatabaseHeader> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new WalsyncError("database", `database ${path} not found; check the path`);
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new WalsyncError("database", `permission denied reading ${path}; run as its owner`);
    }
    throw err;
  }
  if (!stat.isFile) {
    throw new WalsyncError("database", `${path} is not a file; give a database file`);
  }
  if (stat.size === 0) {
    throw new WalsyncError("database", `${path} is empty (0 bytes), not a SQLite database`);
  }
  return await readDatabaseHeader(path);
}

/** Reads and parses the header of a database file; throws a `database` error when it is not one. */
export async function readDatabaseHeader(path: string): Promise<DatabaseHeader> {
  const head = new Uint8Array(100);
  const file = await Deno.open(path, { read: true });
  let filled = 0;
  try {
    while (filled < head.length) {
      const n = await file.read(head.subarray(filled));
      if (n === null) break;
      filled += n;
    }
  } finally {
    file.close();
  }
  const header = parseDatabaseHeader(head.subarray(0, filled));
  if (!header) {
    throw new WalsyncError("database", `${path} is not a SQLite database (bad file header)`);
  }
  return header;
}

/**
 * Runs `PRAGMA integrity_check` (or the faster `quick_check`) on a database no other process
 * uses, returning its verdict: `ok`, or SQLite's findings on one line, separated by `; `
 * (SQLite puts several on one row with newlines, under a `*** in database main ***` banner).
 * @example
 * ```ts
 * if (integrityCheck("restored.db") !== "ok") throw new Error("restored database is damaged");
 * ```
 */
export function integrityCheck(
  path: string,
  pragma: "integrity_check" | "quick_check" = "integrity_check",
): string {
  // Read with `pread`, not through a memory map: a map would be faster (0.1 s instead of 0.6 s
  // for 1 GiB, docs/benchmarks.md) but counts every page read in the process's RSS, up to
  // SQLite's 2 GiB limit, and turns a disk read error into SIGBUS.
  const db = new DatabaseSync(path);
  try {
    const rows = db.prepare(`PRAGMA ${pragma}`).all() as Record<string, unknown>[];
    return rows
      .flatMap((row) => String(Object.values(row)[0]).split("\n"))
      .map((line) => line.trim())
      .filter((line) => line !== "" && !/^\*\*\* in database \w+ \*\*\*$/.test(line))
      .join("; ");
  } finally {
    db.close();
  }
}

/**
 * Throws a `database` error (exit 4) when another process has the database at `path` open, so
 * that a restore does not rename a file over it: that process would go on writing to the
 * replaced file, its commits lost, while the operator believes the restore took.
 *
 * Taking SQLite's exclusive lock for a moment tells: every connection to a WAL database holds a
 * shared lock on it for as long as it is open. A rollback-journal database is locked only during
 * transactions, so an idle application using one goes unseen. A file that is not a SQLite
 * database is not in use as one. Opening it may checkpoint a WAL left beside it (the caller
 * replaces it anyway).
 * @example
 * ```ts
 * checkNotInUse("/var/lib/app/app.db"); // throws while the application runs
 * ```
 */
export function checkNotInUse(path: string): void {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { timeout: 0 });
    db.exec("PRAGMA locking_mode=EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("ROLLBACK");
  } catch (err) {
    if (/locked|busy/i.test(err instanceof Error ? err.message : String(err))) {
      throw new WalsyncError(
        "database",
        `${path} is open in another process (it holds SQLite's lock); stop the application ` +
          `before restoring over its database, then retry`,
      );
    }
  } finally {
    db?.close();
  }
}

/** Turns a SQLite error from a source database into a `database` error (exit 4). */
export function databaseError(path: string, err: unknown): WalsyncError {
  if (err instanceof WalsyncError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/file is not a database/i.test(message)) {
    return new WalsyncError("database", `${path} is not a SQLite database (bad file header)`);
  }
  if (/malformed|corrupt/i.test(message)) {
    return new WalsyncError(
      "database",
      `${path} is corrupt (${message}); repair it or restore a backup`,
    );
  }
  if (/unable to open database file/i.test(message) && missingShm(path)) {
    return new WalsyncError(
      "database",
      `cannot read ${path}: SQLite must create ${path}-shm to read a database in WAL mode and ` +
        `could not; run walsync as a user who may write in ${dirname(path)} (the database's ` +
        `owner), or while the application has the database open`,
    );
  }
  if (/locked|busy/i.test(message)) {
    return new WalsyncError(
      "database",
      `${path} stayed locked by another process (${message}); retry`,
    );
  }
  return new WalsyncError("database", `cannot read ${path}: ${message}`);
}

/**
 * Whether `path` exists without its `-shm`: then SQLite's "unable to open database file" means
 * it could not create the `-shm` a WAL database needs even to be read. Only `lstat`: opening
 * and closing a descriptor of the database here could drop another connection's locks (fact 1).
 */
function missingShm(path: string): boolean {
  try {
    Deno.lstatSync(path);
  } catch {
    return false;
  }
  try {
    Deno.lstatSync(`${path}-shm`);
    return false;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
  }
}

/** Starts a read transaction on `db` (with its WAL read mark). */
export function beginRead(db: DatabaseSync): void {
  db.exec("BEGIN");
  // A statement is needed for the read transaction (and its WAL read mark) to start.
  db.prepare("SELECT count(*) FROM sqlite_master").get();
}
