/**
 * Lag seen from the database's own machine: compares what SQLite has committed locally (the
 * wal-index header in `-shm`, and the `-wal` file's time) with where the bucket's head says
 * the history ends. Used by `walsync status --db <path>`.
 *
 * A `status` process holds no SQLite connection, so opening and closing the `-shm` here cannot
 * drop any lock of ours (docs/sqlite-facts.md, fact 1); the database file itself is only stat'ed.
 *
 * @example
 * ```ts
 * const lag = await localLag(storage, "/srv/app.db", history.head);
 * console.log(lag.lagSeconds, lag.lagKnown);
 * ```
 * @module
 */
import { usageError } from "../support/errors.ts";
import type { Head } from "../history/head.ts";
import { parseSegmentMetadata } from "../history/segment.ts";
import type { Storage } from "../storage/storage.ts";
import { parseWalIndexHeader, type WalIndexHeader, walIndexHeaderSize } from "../format/wal.ts";

/** How sure a lag figure is. */
export type LagKnown = "exact" | "at-least" | "unknown";

/** The lag of one replica against the local database. */
export interface LocalLag {
  /** Seconds: the age of the oldest local commit not in storage (a lower bound when `at-least`). */
  lagSeconds: number | null;
  /** `exact`: everything committed is shipped; `at-least`: a lower bound; `unknown`: no path. */
  lagKnown: LagKnown;
  /** Whether a local commit is known to be missing from storage. */
  behind: boolean;
  /** Why, in one line (for the text output). */
  reason: string;
}

/** The wal-index header of `shmPath`, or null when there is none or it is being written. */
async function readIndexHeader(shmPath: string): Promise<WalIndexHeader | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(shmPath, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    const buffer = new Uint8Array(2 * walIndexHeaderSize);
    for (let attempt = 0; attempt < 20; attempt++) {
      await file.seek(0, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < buffer.byteLength) {
        const n = await file.read(buffer.subarray(filled));
        if (n === null || n === 0) break;
        filled += n;
      }
      if (filled < buffer.byteLength) return null;
      const header = parseWalIndexHeader(buffer);
      if (header) return header;
    }
    return null;
  } finally {
    file.close();
  }
}

async function mtimeOf(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? null;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * Compares the segment the head ends on with SQLite's published WAL: `shipped` when it ends
 * at the last published frame, `behind` when the WAL holds commits past it (a later frame of
 * the same WAL, or a newer WAL), `unknown` when the head is a snapshot or the WAL is empty.
 */
async function compareHeadWithIndex(
  storage: Storage,
  head: Head,
  index: WalIndexHeader,
): Promise<"shipped" | "behind" | "unknown"> {
  if (index.mxFrame === 0 || !head.key.endsWith(".wal")) return "unknown";
  const info = await storage.head(head.key);
  if (!info) return "unknown";
  const segment = parseSegmentMetadata(head.key, info.metadata);
  const same = segment.salt1 === index.salt1 && segment.salt2 === index.salt2 &&
    segment.checksumEnd[0] === index.frameChecksum[0] &&
    segment.checksumEnd[1] === index.frameChecksum[1];
  return same ? "shipped" : "behind";
}

/**
 * The lag of the history ending at `head` (or, without one, at `newestObjectMs`) behind the
 * local database at `dbPath`. Exact only when it is zero: the head's last segment ends at the
 * frame SQLite last published. Otherwise the newest local commit is no older than the `-wal`
 * file's time, so the oldest unshipped one is at least that old: a lower bound.
 */
export async function localLag(
  storage: Storage,
  dbPath: string,
  head: Head | undefined,
  newestObjectMs: number,
  nowMs = Date.now(),
): Promise<LocalLag> {
  let real: string;
  try {
    // SQLite keeps -wal and -shm beside the real file (docs/sqlite-facts.md, fact 6).
    real = await Deno.realPath(dbPath);
  } catch {
    throw usageError(`--db ${dbPath} does not exist; give the path of the live database file`);
  }
  const index = await readIndexHeader(`${real}-shm`);
  const compared = head && index ? await compareHeadWithIndex(storage, head, index) : "unknown";
  if (compared === "shipped") {
    return {
      lagSeconds: 0,
      lagKnown: "exact",
      behind: false,
      reason: "every local commit is shipped",
    };
  }
  const walMs = await mtimeOf(`${real}-wal`);
  const shippedMs = head ? Date.parse(head.updated) || newestObjectMs : newestObjectMs;
  // With an empty WAL (reset by a checkpoint) the commits are in the database file, and the
  // watcher's own checkpoints touch it after shipping: nothing is known to be missing.
  const walHasCommits = index ? index.mxFrame > 0 : walMs !== null;
  if (compared === "behind" || (walHasCommits && walMs !== null && walMs > shippedMs)) {
    return {
      lagSeconds: walMs === null ? 0 : Math.max(0, nowMs - walMs) / 1000,
      lagKnown: "at-least",
      behind: true,
      reason: `local commits are not in storage (the newest at ${
        walMs === null ? "?" : new Date(walMs).toISOString()
      })`,
    };
  }
  return {
    lagSeconds: 0,
    lagKnown: "at-least",
    behind: false,
    reason: "no local change after the head was written is known",
  };
}
