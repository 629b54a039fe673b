/**
 * File stamps (inode, size, mtime) taken with `stat`, never with a descriptor: a descriptor
 * of a live database file opened and closed by this process drops SQLite's locks
 * (docs/sqlite-facts.md, fact 1).
 * @module
 */

/** What a file looked like at a moment: a change of any field means it was written. */
export interface FileStamp {
  /** Inode number (null where the platform has none). */
  ino: number | null;
  /** Size in bytes. */
  size: number;
  /** Modification time, ms since epoch. */
  mtime: number;
}

/** The stamp of `path`, or null when it does not exist. */
export async function stampOf(path: string): Promise<FileStamp | null> {
  try {
    const info = await Deno.stat(path);
    return { ino: info.ino, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Whether two stamps show the same file unchanged (two missing files count as the same). */
export function sameStamp(a: FileStamp | null, b: FileStamp | null): boolean {
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtime === b.mtime;
}
