/**
 * The bytes of a live database as one committed state, read straight from its files under a
 * held SQLite read transaction, with no temporary copy.
 *
 * A reader in WAL mode sees page P as the newest frame for P at or before the `mxFrame` it
 * started with, or else as page P of the database file. SQLite keeps that view stable while the
 * read transaction lasts: checkpoints copy no frame past the reader's mark into the database
 * file, and no writer restarts the WAL under a reader whose mark is above 0. Reading the two
 * files the same way gives the same bytes, twice if need be: once for the digest that has to
 * be in the object's metadata before the upload starts, once for the upload.
 *
 * The database file and its `-shm` are held through `held_file.ts` and let go only after
 * SQLite's connections close: closing another descriptor of either file while SQLite holds
 * locks on it would drop them (docs/sqlite-facts.md, fact 1).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { beginRead, databaseError } from "./database.ts";
import { parseWalHeader, walFrameHeaderSize, walHeaderSize, type WalIndexHeader } from "./wal.ts";
import { type HeldFile, holdFile } from "../support/held_file.ts";
import { readAt } from "../support/read_at.ts";
import { sameBytes } from "../support/bytes.ts";
import { openWalIndex, type WalIndex } from "./wal_index.ts";

/** A consistent image of a database, readable at any offset until it is closed. */
export interface SnapshotImage {
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Pages in the image. */
  readonly pageCount: number;
  /** Bytes in the image (`pageSize * pageCount`). */
  readonly size: number;
  /** Frames taken from the WAL instead of the database file (for logs and tests). */
  readonly walPages: number;
  /** Fills `buffer` with the image's bytes from `offset`; returns how many (less at the end). */
  read(offset: number, buffer: Uint8Array): Promise<number>;
  /** Ends the read transaction and closes every file, in the order fact 1 requires. */
  close(): void;
}

/** The image cannot be read this way (no `-shm`, say); the caller copies with `backup()`. */
export class ImageUnavailable extends Error {}

/** How often the wal-index header may move while the read transaction starts. */
const pinAttempts = 50;

/**
 * Begins a read transaction whose snapshot is exactly the published header: the header read
 * before and after `BEGIN; SELECT` is the same (its change counter moves on every commit and
 * its salts on every WAL restart), so the transaction saw that header. Also returns
 * `nBackfill` read after the transaction began and before the second header read.
 */
function pinReadTransaction(
  conn: DatabaseSync,
  index: WalIndex,
): { header: WalIndexHeader; backfilled: number } {
  for (let attempt = 0; attempt < pinAttempts; attempt++) {
    const before = index.read();
    beginRead(conn);
    const backfilled = index.backfilled();
    const after = index.read();
    if (before && after && backfilled !== null && sameBytes(before.bytes, after.bytes)) {
      return { header: after, backfilled };
    }
    conn.exec("ROLLBACK");
  }
  throw new ImageUnavailable("the wal-index header kept changing while the read began");
}

/**
 * Where each page's newest frame up to `mxFrame` lies in the WAL: page number to the file
 * offset of its content. Checks that the WAL is the one the wal-index describes and that
 * every frame belongs to it.
 */
async function mapWalFrames(
  wal: Deno.FsFile,
  index: WalIndexHeader,
  pageCount: number,
): Promise<Map<number, number>> {
  const headerBytes = new Uint8Array(walHeaderSize);
  if ((await readAt(wal, 0, headerBytes)) < walHeaderSize) {
    throw new ImageUnavailable("the WAL is shorter than its header");
  }
  const header = parseWalHeader(headerBytes);
  if (
    header.salt1 !== index.salt1 || header.salt2 !== index.salt2 ||
    header.pageSize !== index.pageSize
  ) {
    throw new ImageUnavailable("the WAL is not the one its wal-index describes");
  }
  const frameSize = walFrameHeaderSize + index.pageSize;
  const pages = new Map<number, number>();
  // Frames are read in runs of up to 8 MiB; only their 24-byte headers are looked at.
  const perRun = Math.max(1, Math.floor((8 << 20) / frameSize));
  const run = new Uint8Array(perRun * frameSize);
  const view = new DataView(run.buffer);
  let lastCommitSize = 0;
  for (let first = 0; first < index.mxFrame; first += perRun) {
    const count = Math.min(perRun, index.mxFrame - first);
    const offset = walHeaderSize + first * frameSize;
    const n = await readAt(wal, offset, run.subarray(0, count * frameSize));
    if (n < count * frameSize) throw new ImageUnavailable("the WAL ends before mxFrame");
    for (let i = 0; i < count; i++) {
      const at = i * frameSize;
      if (view.getUint32(at + 8) !== index.salt1 || view.getUint32(at + 12) !== index.salt2) {
        throw new ImageUnavailable("a frame before mxFrame belongs to another WAL");
      }
      pages.set(view.getUint32(at), offset + at + walFrameHeaderSize);
      lastCommitSize = view.getUint32(at + 4);
    }
  }
  if (lastCommitSize !== pageCount) {
    throw new ImageUnavailable(
      `frame mxFrame says ${lastCommitSize} pages, the read transaction ${pageCount}`,
    );
  }
  return pages;
}

function pragmaNumber(conn: DatabaseSync, name: string): number {
  const row = conn.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>;
  return Number(row[name]);
}

/**
 * Opens `dbPath` for a consistent image: a read transaction is held until `close()`. Throws
 * {@link ImageUnavailable} when the database cannot be read this way (WAL mode without a
 * `-shm`, as with `locking_mode=EXCLUSIVE`), and a `database` error when SQLite refuses it.
 *
 * @example
 * ```ts
 * const image = await openSnapshotImage("/var/lib/app/app.db");
 * try {
 *   const first = new Uint8Array(image.pageSize);
 *   await image.read(0, first); // page 1 as the read transaction sees it
 * } finally {
 *   image.close();
 * }
 * ```
 */
export async function openSnapshotImage(dbPath: string): Promise<SnapshotImage> {
  let conn: DatabaseSync | undefined;
  let dbFile: HeldFile | undefined;
  let index: WalIndex | undefined;
  let image: SnapshotImage | undefined;
  // Fact 1: the database file and the `-shm` are let go after SQLite's connection closes.
  const close = () => {
    image?.close();
    try {
      if (conn?.isTransaction) conn.exec("ROLLBACK");
    } catch { /* closing anyway */ }
    conn?.close();
    index?.release();
    dbFile?.release();
  };
  try {
    try {
      conn = new DatabaseSync(dbPath, { readOnly: true, timeout: 10_000 });
      conn.prepare("PRAGMA schema_version").get();
    } catch (err) {
      throw databaseError(dbPath, err);
    }
    dbFile = holdFile(dbPath);
    const mode = String(
      (conn.prepare("PRAGMA journal_mode").get() as Record<string, unknown>).journal_mode,
    );
    let pinned: { header: WalIndexHeader; backfilled: number } | null = null;
    if (mode === "wal") {
      try {
        index = openWalIndex(`${dbPath}-shm`);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) throw new ImageUnavailable("no -shm file");
        throw err;
      }
      pinned = pinReadTransaction(conn, index);
    } else {
      // Rollback journal: the shared lock of this transaction keeps writers out.
      beginRead(conn);
    }
    image = await pinnedImage({
      readDatabase: dbFile.readAt,
      walPath: `${dbPath}-wal`,
      index: pinned?.header ?? null,
      backfilled: pinned?.backfilled ?? 0,
      reader: conn,
    });
    const { pageSize, pageCount, size, walPages, read } = image;
    return { pageSize, pageCount, size, walPages, read, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** What {@link pinnedImage} needs: a read transaction already pinned at a known header. */
export interface PinnedState {
  /** Reads the database file at an offset (a held descriptor: fact 1). */
  readDatabase(offset: number, buffer: Uint8Array): Promise<number>;
  /** The `-wal` file (no SQLite locks: opened and closed freely). */
  walPath: string;
  /** The wal-index header the read transaction began at; null when not in WAL mode. */
  index: WalIndexHeader | null;
  /** `nBackfill`, read after the transaction began and before the header was read again. */
  backfilled: number;
  /** The connection holding the read transaction (it gives the page size and count). */
  reader: DatabaseSync;
}

/**
 * The image of a state whose read transaction the caller holds (and keeps until the image is
 * closed). Closing it closes only the `-wal` descriptor it opened.
 */
export async function pinnedImage(state: PinnedState): Promise<SnapshotImage> {
  const { index, backfilled } = state;
  const pageSize = pragmaNumber(state.reader, "page_size");
  const pageCount = pragmaNumber(state.reader, "page_count");
  // Fully checkpointed: the reader may hold slot 0, which lets a writer restart the WAL
  // under it, but the database file then holds every page of this state and no checkpoint
  // can change it while the transaction lasts.
  if (index === null || backfilled >= index.mxFrame) {
    return imageOver(state.readDatabase, undefined, new Map(), pageSize, pageCount);
  }
  const wal = await Deno.open(state.walPath, { read: true });
  try {
    const pages = await mapWalFrames(wal, index, pageCount);
    return imageOver(state.readDatabase, wal, pages, pageSize, pageCount);
  } catch (err) {
    wal.close();
    throw err;
  }
}

function imageOver(
  readDatabase: (offset: number, buffer: Uint8Array) => Promise<number>,
  wal: Deno.FsFile | undefined,
  walPages: Map<number, number>,
  pageSize: number,
  pageCount: number,
): SnapshotImage {
  const size = pageSize * pageCount;
  // One read at a time: the WAL is read through seek + read.
  let queue: Promise<unknown> = Promise.resolve();
  const readRange = async (offset: number, buffer: Uint8Array): Promise<number> => {
    const length = Math.min(buffer.byteLength, Math.max(0, size - offset));
    if (length === 0) return 0;
    const end = offset + length;
    const target = buffer.subarray(0, length);
    const fromFile = await readDatabase(offset, target);
    const firstPage = Math.floor(offset / pageSize) + 1;
    const lastPage = Math.floor((end - 1) / pageSize) + 1;
    for (let pgno = firstPage; pgno <= lastPage; pgno++) {
      const pageStart = (pgno - 1) * pageSize;
      const from = Math.max(pageStart, offset);
      const to = Math.min(pageStart + pageSize, end);
      const at = walPages.get(pgno);
      if (at !== undefined) {
        const part = target.subarray(from - offset, to - offset);
        if ((await readAt(wal!, at + (from - pageStart), part)) < part.byteLength) {
          throw new Error(`the WAL ended inside the frame of page ${pgno}`);
        }
      } else if (to - offset > fromFile) {
        throw new Error(`page ${pgno} is neither in the database file nor in the WAL`);
      }
    }
    return length;
  };
  return {
    pageSize,
    pageCount,
    size,
    walPages: walPages.size,
    read(offset, buffer) {
      const result = queue.then(() => readRange(offset, buffer));
      queue = result.catch(() => {});
      return result;
    },
    close: () => wal?.close(),
  };
}
