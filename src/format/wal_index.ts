/**
 * SQLite's published state of a database's WAL, read from the wal-index header at the start
 * of its `-shm` file: what is committed (`mxFrame` and the salts of the WAL it belongs to)
 * and whether anything changed (the change counter).
 *
 * The `-shm` carries SQLite's POSIX locks, so its descriptor is held the way `held_file.ts`
 * says (docs/sqlite-facts.md, fact 1): once per process, shared by every watcher of the
 * database, closed after the last one's SQLite connections.
 * @module
 */
import { holdFile } from "../support/held_file.ts";
import { parseWalIndexHeader, type WalIndexHeader, walIndexHeaderSize } from "./wal.ts";

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

/**
 * Opens (or shares) the `-shm` file at `shmPath`. Call right after opening the SQLite
 * connections that created or use it, with no await in between.
 * @throws Deno.errors.NotFound when there is none (the database is not in WAL mode, or
 *   uses `locking_mode=EXCLUSIVE`, which keeps the wal-index in memory).
 */
export function openWalIndex(shmPath: string): WalIndex {
  const shm = holdFile(shmPath);
  const buffer = new Uint8Array(2 * walIndexHeaderSize);
  return {
    read() {
      for (let attempt = 0; attempt < tornReadRetries; attempt++) {
        // Synchronous: the descriptor's position is shared by every watcher of the file.
        shm.file.seekSync(0, Deno.SeekMode.Start);
        let filled = 0;
        while (filled < buffer.byteLength) {
          const n = shm.file.readSync(buffer.subarray(filled));
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
      shm.file.seekSync(2 * walIndexHeaderSize, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < word.byteLength) {
        const n = shm.file.readSync(word.subarray(filled));
        if (n === null || n === 0) return null;
        filled += n;
      }
      // Host byte order, like the rest of the wal-index.
      return new Uint32Array(word.buffer)[0];
    },
    release: () => shm.release(),
  };
}
