/**
 * `PRAGMA integrity_check` of a freshly restored file, read through a memory map.
 *
 * The check walks every b-tree page. Through SQLite's default `read()` per 4 KiB page, 1 GiB
 * costs about 0.6 CPU s, mostly in the kernel copying pages; mapped, the same check reads the
 * page cache in place and takes about 0.1 s. The file is Walsync's own temporary file, which
 * nothing else opens or truncates, so the map carries none of mmap's usual risks.
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** Bytes SQLite may map (it caps this at its compile-time limit; the rest is read as usual). */
const mapBytes = 2 ** 40;

/** Runs `PRAGMA integrity_check` on `path` and returns its verdict (`ok`, or the problems). */
export function integrityCheckMapped(path: string): string {
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA mmap_size=${mapBytes}`);
    const rows = db.prepare("PRAGMA integrity_check").all() as Record<string, unknown>[];
    return rows.map((row) => String(Object.values(row)[0])).join("; ");
  } finally {
    db.close();
  }
}
