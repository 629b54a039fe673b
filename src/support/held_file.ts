/**
 * Descriptors of files SQLite holds POSIX locks on (a live database, its `-shm`), opened once
 * per process and closed only when the last user lets go.
 *
 * Closing any descriptor of such a file drops every lock this process holds on it
 * (docs/sqlite-facts.md, fact 1). So a file is opened once per process, shared by every user
 * (one watcher per replica of the same database), and each user lets go only after closing
 * its SQLite connections. Opening and the bookkeeping are synchronous, so that no other task
 * runs between a user opening its connections and registering here.
 * @module
 */

interface HeldEntry {
  key: string;
  file: Deno.FsFile;
  /** Descriptors opened while another of the same file was registered; closed with it. */
  extra: Deno.FsFile[];
  users: number;
}

const held = new Map<string, HeldEntry>();

/** One user's share of a held descriptor. */
export interface HeldFile {
  /**
   * The shared descriptor. Only ever use its synchronous methods (`seekSync`, `readSync`,
   * with no await between them): an asynchronous operation closes a duplicate of it, which
   * drops SQLite's locks (fact 9).
   */
  readonly file: Deno.FsFile;
  /**
   * Reads up to `buffer.byteLength` bytes at `offset` (fewer only at the end of the file).
   * The read itself is synchronous, for the reason above; the promise is for callers that
   * read other sources asynchronously.
   */
  readAt(offset: number, buffer: Uint8Array): Promise<number>;
  /** Lets go (closing the descriptor when no other user holds it). Idempotent. */
  release(): void;
}

function keyOf(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

/**
 * Opens (or shares) the file at `path` for reading. Call right after opening the SQLite
 * connections that use it, with no await in between; release after closing them.
 * @throws Deno.errors.NotFound when the file does not exist.
 *
 * @example
 * ```ts
 * const shm = holdFile("/var/lib/app/app.db-shm");
 * try {
 *   // … read it while SQLite's connections are open …
 * } finally {
 *   shm.release(); // after closing those connections
 * }
 * ```
 */
export function holdFile(path: string): HeldFile {
  const stat = Deno.statSync(path);
  let entry = held.get(keyOf(stat));
  if (!entry) {
    const file = Deno.openSync(path, { read: true });
    const key = keyOf(file.statSync());
    const existing = held.get(key);
    if (existing) existing.extra.push(file); // replaced in between: never close it early
    else held.set(key, { key, file, extra: [], users: 0 });
    entry = held.get(key)!;
  }
  const mine = entry;
  mine.users++;
  let released = false;
  // Synchronous on purpose: Deno's asynchronous file operations work on a duplicate of the
  // descriptor and close it afterwards, and that close drops every POSIX lock this process
  // holds on the file (docs/sqlite-facts.md, fact 9).
  const readNow = (offset: number, buffer: Uint8Array): number => {
    mine.file.seekSync(offset, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < buffer.byteLength) {
      const n = mine.file.readSync(buffer.subarray(filled));
      if (n === null || n === 0) break;
      filled += n;
    }
    return filled;
  };
  return {
    file: mine.file,
    readAt(offset, buffer) {
      try {
        return Promise.resolve(readNow(offset, buffer));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    release() {
      if (released) return;
      released = true;
      if (--mine.users > 0) return;
      held.delete(mine.key);
      for (const file of [mine.file, ...mine.extra]) {
        try {
          file.close();
        } catch { /* already closed */ }
      }
    },
  };
}
