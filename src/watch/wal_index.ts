/**
 * SQLite's published state of a database's WAL, read from the wal-index header at the start
 * of its `-shm` file: what is committed (`mxFrame` and the salts of the WAL it belongs to)
 * and whether anything changed (the change counter).
 *
 * The `-shm` carries SQLite's POSIX locks, and closing any descriptor of it drops every lock
 * this process holds on it (docs/sqlite-facts.md, fact 1). So each file is opened once per
 * process, shared by every watcher of the database (one per replica), and closed only when
 * the last of them lets go, right after closing its SQLite connections. Opening and the
 * bookkeeping are synchronous so that no other task runs between a watcher opening its
 * connections and registering here, or between closing them and letting go.
 * @module
 */
import { parseWalIndexHeader, type WalIndexHeader, walIndexHeaderSize } from "../wal.ts";

interface OpenIndex {
  key: string;
  file: Deno.FsFile;
  /** Descriptors opened while another of the same file was registered; closed with it. */
  extra: Deno.FsFile[];
  users: number;
}

const openIndexes = new Map<string, OpenIndex>();

/** How many times a torn read (a writer updating the header) is retried at once. */
const tornReadRetries = 20;

/** One watcher's use of a `-shm` file. */
export interface WalIndex {
  /**
   * The header as published now, or null when it cannot be read consistently (no header
   * yet, or a writer kept updating it): then nothing is known to be committed; ask later.
   */
  read(): WalIndexHeader | null;
  /**
   * How many frames of the WAL checkpoints have copied into the database file (`nBackfill`,
   * the first word after the two headers), or null when the file is too short to hold it.
   */
  backfilled(): number | null;
  /** Lets go of the file (closing it when no watcher of this process uses it). Idempotent. */
  release(): void;
}

function keyOf(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

/**
 * Opens (or shares) the `-shm` file at `shmPath`. Call right after opening the SQLite
 * connections that created or use it, with no await in between.
 * @throws Deno.errors.NotFound when there is none (the database is not in WAL mode, or
 *   uses `locking_mode=EXCLUSIVE`, which keeps the wal-index in memory).
 */
export function openWalIndex(shmPath: string): WalIndex {
  const stat = Deno.statSync(shmPath);
  let entry = openIndexes.get(keyOf(stat));
  if (!entry) {
    const file = Deno.openSync(shmPath, { read: true });
    const key = keyOf(file.statSync());
    const existing = openIndexes.get(key);
    if (existing) existing.extra.push(file); // replaced in between: never close it early
    else openIndexes.set(key, { key, file, extra: [], users: 0 });
    entry = openIndexes.get(key)!;
  }
  const mine = entry;
  mine.users++;
  const buffer = new Uint8Array(2 * walIndexHeaderSize);
  let released = false;
  return {
    read() {
      for (let attempt = 0; attempt < tornReadRetries; attempt++) {
        // Synchronous: the descriptor's position is shared by every watcher of the file.
        mine.file.seekSync(0, Deno.SeekMode.Start);
        let filled = 0;
        while (filled < buffer.byteLength) {
          const n = mine.file.readSync(buffer.subarray(filled));
          if (n === null || n === 0) break;
          filled += n;
        }
        if (filled < buffer.byteLength) return null;
        const header = parseWalIndexHeader(buffer);
        if (header) return header;
      }
      return null;
    },
    backfilled() {
      const word = new Uint8Array(4);
      mine.file.seekSync(2 * walIndexHeaderSize, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < word.byteLength) {
        const n = mine.file.readSync(word.subarray(filled));
        if (n === null || n === 0) return null;
        filled += n;
      }
      // Host byte order, like the rest of the wal-index.
      return new Uint32Array(word.buffer)[0];
    },
    release() {
      if (released) return;
      released = true;
      if (--mine.users > 0) return;
      openIndexes.delete(mine.key);
      for (const file of [mine.file, ...mine.extra]) {
        try {
          file.close();
        } catch { /* already closed */ }
      }
    },
  };
}
