/**
 * Continuous backup: ship every committed WAL frame of one or many databases to storage on
 * a short interval, as checksummed segments that continue a snapshot.
 *
 * How the WAL is kept from being lost under us (see `docs/replication.md` for the argument):
 * at every moment after a generation starts, this process holds a read transaction on the
 * database. While it does, no other process can restart the WAL past frames we have not
 * shipped: a reader with a read mark blocks the restart, and a reader on the database file
 * alone blocks every backfill. Each sync ships what the WAL holds, then opens a read
 * transaction on the second reader connection before closing the first, so there is no gap.
 * Our own checkpoints run under the write lock, after everything has been shipped.
 *
 * The database file itself is never opened by this process except through SQLite
 * (SQLITE-FACTS.md, fact 1); the `-wal` file is read with its own descriptor, which is safe.
 * @module
 */
import { basename, join, resolve } from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { databaseError, readDatabaseHeader } from "./database.ts";
import { WalsyncError } from "./errors.ts";
import { createHistoryWriter, type HistoryWriter } from "./history/writer.ts";
import { meta, newGenerationId, snapshotKey, walSegmentKey } from "./layout.ts";
import type { Logger } from "./log.ts";
import { sha256Hex } from "./hash.ts";
import { putBytesObject, putFileObject } from "./object.ts";
import { encodeSegment, segmentMetadata } from "./segment.ts";
import type { Metadata, Storage } from "./storage.ts";
import {
  readWalFile,
  segmentInfoOf,
  type WalFileRead,
  type WalHeader,
  type WalPosition,
  type WalReadBuffer,
  walStartPosition,
} from "./wal.ts";

/** Settings for one watcher ({@link createWatcher}). */
export interface WatchOptions {
  /** How often new WAL frames are shipped. */
  syncIntervalMs: number;
  /** How often a fresh snapshot (and generation) is taken; 0 turns it off. */
  snapshotIntervalMs: number;
  /** Checkpoint the WAL ourselves once it holds this many bytes past its header. */
  checkpointBytes: number;
  /** Uploads in flight at once across all databases. */
  maxConcurrentUploads: number;
  /** Where events go. */
  logger: Logger;
  /** The lease, txids and head of this database's history (issue 11); made here when absent. */
  history?: HistoryWriter;
}

/** Defaults for {@link WatchOptions}. */
export const watchDefaults = {
  syncIntervalMs: 1000,
  snapshotIntervalMs: 24 * 3600 * 1000,
  checkpointBytes: 4 * 1024 * 1024,
  maxConcurrentUploads: 8,
} as const;

/** What a watcher reports about one database (for status and metrics). */
export interface WatchStatus {
  /** Database path. */
  path: string;
  /** Name in the bucket. */
  db: string;
  /** Current generation, if one is running. */
  generation?: string;
  /** Last txid shipped. */
  txid?: number;
  /** Seconds since the oldest unshipped commit was seen, 0 when caught up. */
  lagSeconds: number;
  /** Bytes and objects uploaded since start. */
  bytesUploaded: number;
  /** Objects uploaded since start. */
  objectsUploaded: number;
  /** Failed sync attempts since start. */
  syncErrors: number;
  /** When the last successful sync ended (ms since epoch), 0 before the first. */
  lastSyncAt: number;
}

/** A bounded number of concurrent tasks. */
export interface Limiter {
  /** Runs `task` when a slot is free. */
  run<T>(task: () => Promise<T>): Promise<T>;
}

/** Creates a {@link Limiter} with `slots` slots. */
export function createLimiter(slots: number): Limiter {
  let free = slots;
  const waiting: (() => void)[] = [];
  return {
    async run(task) {
      if (free === 0) await new Promise<void>((resolve) => waiting.push(resolve));
      else free--;
      try {
        return await task();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
}

/** How often to look for the application's first commit after our own checkpoint (see `checkpoint`). */
const escapePollMs = 5;
/** For how long after our own checkpoint to look that often; then once per {@link slowEscapePollMs}. */
const escapeFastForMs = 2000;
const slowEscapePollMs = 250;
const slowEscapeForMs = 10_000;
/** How soon to try again for the write lock when a checkpoint is due and a writer held it. */
const checkpointRetryMs = 20;
/** A segment holds about this many bytes of WAL at most (a longer backlog is cut into several). */
const segmentBytes = 16 * 1024 * 1024;
/** Page cache of each of our connections: they only read the schema and copy snapshots. */
const connectionCacheKiB = 256;

/**
 * One buffer for every WAL read of this process (a read is consumed before the next one
 * starts): reading a backlog in 16 MiB pieces would otherwise leave a fresh 16 MiB buffer
 * per piece for the garbage collector, and the process's memory would follow its backlog.
 */
const walReadBuffer: WalReadBuffer = { bytes: new Uint8Array(0), limit: 2 * segmentBytes };
/** The {@link withProcessLock} key that guards {@link walReadBuffer} (not a path). */
const walReadBufferKey = "\0wal-read-buffer";

/** First snapshots of many databases are taken a few at a time, not all at once. */
const snapshotSlots = createLimiter(2);

/** Resolves after `ms` milliseconds. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const processLocks = new Map<string, Promise<void>>();

/**
 * Runs `task` while no other task of this process holds the lock for `path`. Watchers of the
 * same database (one per replica) take SQLite's write lock across awaits; without this they
 * would wait for each other inside SQLite's busy handler, which blocks the event loop.
 */
export async function withProcessLock<T>(path: string, task: () => Promise<T>): Promise<T> {
  const before = processLocks.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = before.then(() => mine);
  processLocks.set(path, tail);
  await before;
  try {
    return await task();
  } finally {
    release();
    if (processLocks.get(path) === tail) processLocks.delete(path);
  }
}

/** Where one database's backup stands. */
interface Lineage {
  generation: string;
  pageSize: number;
  header: WalHeader | null;
  position: WalPosition | null;
  txid: number;
  prevSha256: string;
  startedAt: number;
  /** Inode of the `-wal` file `header` was read from (null before there was one). */
  walInode: number | null;
  /** WAL offset at our last complete checkpoint (-1 for none): nothing to do until it moves. */
  checkpointedAt: number;
}

/** A segment read from the WAL and sealed, waiting for its upload; uploads keep this order. */
interface PendingSegment {
  key: string;
  body: Uint8Array;
  metadata: Metadata;
  txidLast: number;
}

/** What a file looked like at a moment: a change of any field means it was written. */
interface FileStamp {
  ino: number | null;
  size: number;
  mtime: number;
}

async function stampOf(path: string): Promise<FileStamp | null> {
  try {
    const info = await Deno.stat(path);
    return { ino: info.ino, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Whether two stamps show the same file unchanged (two missing files count as the same). */
function sameStamp(a: FileStamp | null, b: FileStamp | null): boolean {
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtime === b.mtime;
}

/** The connections a watcher keeps open on one database. */
interface Connections {
  /** Takes the write lock briefly (snapshots, checkpoints); never writes. */
  lock: DatabaseSync;
  /** Two readers; `active` holds the read transaction. */
  readers: [DatabaseSync, DatabaseSync];
  active: 0 | 1;
  /** Inode of the database file when opened, to notice a replaced file. */
  inode: number | null;
}

function beginRead(db: DatabaseSync): void {
  db.exec("BEGIN");
  // A statement is needed for the read transaction (and its WAL read mark) to start.
  db.prepare("SELECT count(*) FROM sqlite_master").get();
}

function endRead(db: DatabaseSync): void {
  if (db.isTransaction) db.exec("COMMIT");
}

function closeConnections(conns: Connections | null): void {
  if (!conns) return;
  for (const db of [...conns.readers, conns.lock]) {
    try {
      if (db.isTransaction) db.exec("ROLLBACK");
    } catch { /* closing anyway */ }
    try {
      db.close();
    } catch { /* already closed */ }
  }
}

/** One database being watched. */
export interface DatabaseWatcher {
  /** Status for logs and metrics. */
  status(): WatchStatus;
  /**
   * One sync step: start a generation if needed, ship new frames, checkpoint if due. Returns
   * how soon (ms) the next step is wanted when sooner than the sync interval, else 0.
   */
  tick(): Promise<number>;
  /** Ships what is pending and closes the connections. */
  close(): Promise<boolean>;
}

/** Creates the watcher of one database. */
export function createWatcher(
  path: string,
  storage: Storage,
  limiter: Limiter,
  options: WatchOptions,
  name: string = basename(path),
): DatabaseWatcher {
  const dbPath = resolve(path);
  const walPath = `${dbPath}-wal`;
  const logger = options.logger;
  // History hook (src/history/writer.ts): lease, txids from the head, head after each batch.
  const history = options.history ?? createHistoryWriter(storage, name, { logger });
  let conns: Connections | null = null;
  let lineage: Lineage | null = null;
  let pendingReason = "started";
  let lagSince = 0;
  let retryAt = 0;
  let failures = 0;
  /** Sealed segments not uploaded yet, oldest first. */
  const pending: PendingSegment[] = [];
  /** Last txid known to be in storage. */
  let shippedTxid: number | undefined;
  /** The WAL as last read; while it is unchanged there is nothing to read. */
  let lastStamp: FileStamp | null = null;
  /** Highest txid this process gave to an object of this database. */
  let highestTxid = -1;
  /** When the next full sync is due; ticks before it only do the light work below. */
  let nextSyncAt = 0;
  /**
   * Our held read transaction is on read slot 0 (it began on a fully checkpointed WAL) and
   * everything in the WAL is shipped. Until it moves to a reader with a WAL mark, the
   * application's automatic checkpoints cannot copy anything and redo their setup at every
   * commit, so we move as soon as the application commits.
   */
  let onSlotZeroSince = 0;
  /** Poll at {@link escapePollMs} (after our own checkpoint, when a writer is known busy). */
  let escapeFast = false;
  /** The database file as seen at the last sync (its writes come from checkpoints). */
  let lastDbStamp: FileStamp | null = null;
  /** The last collect() stopped before the end of the WAL: sync again right away. */
  let behind = false;
  /** Our checkpoint is due but a writer held the lock; try again shortly. */
  let checkpointDue = false;
  const stats = { bytesUploaded: 0, objectsUploaded: 0, syncErrors: 0, lastSyncAt: 0 };

  const fields = (extra: Record<string, string | number | undefined> = {}) => ({
    db: name,
    ...extra,
  });

  function reset(reason: string): void {
    closeConnections(conns);
    conns = null;
    lineage = null;
    pendingReason = reason;
    behind = false;
  }

  async function openConnections(): Promise<Connections> {
    // Checked through stat and SQLite only: another watcher of this process (a second
    // replica of the same database) may hold connections, and opening and closing a plain
    // descriptor of the file would drop their locks (SQLITE-FACTS.md, fact 1).
    const stamp = await stampOf(dbPath);
    if (stamp === null) {
      throw new WalsyncError("database", `database ${dbPath} not found; check the path`);
    }
    const inode = stamp.ino;
    if (stamp.size === 0) {
      throw new WalsyncError("database", `${dbPath} is empty (0 bytes), not a SQLite database`);
    }
    // A short busy timeout: SQLite's busy handler sleeps inside a synchronous call, which
    // would stall every other database of this process; takeWriteLock() retries instead.
    const lock = new DatabaseSync(dbPath, { timeout: 5 });
    const readers: [DatabaseSync, DatabaseSync] = [
      new DatabaseSync(dbPath, { timeout: 2000 }),
      new DatabaseSync(dbPath, { timeout: 2000 }),
    ];
    const opened: Connections = { lock, readers, active: 0, inode };
    try {
      try {
        lock.prepare("PRAGMA schema_version").get();
      } catch (err) {
        throw databaseError(dbPath, err);
      }
      const mode =
        (lock.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
      if (mode !== "wal") {
        const now =
          (lock.prepare("PRAGMA journal_mode=WAL").get() as { journal_mode: string }).journal_mode;
        if (now !== "wal") {
          throw new WalsyncError(
            "database",
            `${dbPath} could not be switched to WAL mode (it is ${now}); close other connections and retry`,
          );
        }
        logger.log("INFO", "switched database to WAL mode", fields({ was: mode }));
      }
      // Our connections never write, so they must never checkpoint on their own either.
      for (const db of [lock, ...readers]) {
        db.exec(`PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-${connectionCacheKiB}`);
      }
    } catch (err) {
      closeConnections(opened);
      throw err;
    }
    return opened;
  }

  /**
   * Takes SQLite's write lock on `lock`, trying `attempts` times a few milliseconds apart
   * (awaiting between tries, so other databases keep being served).
   */
  async function takeWriteLock(lock: DatabaseSync, attempts: number): Promise<boolean> {
    for (let i = 0; i < attempts; i++) {
      try {
        lock.exec("BEGIN IMMEDIATE");
        return true;
      } catch (err) {
        if (!/locked|busy/i.test((err as Error).message)) throw err;
        if (i + 1 < attempts) await sleep(Math.min(50, 2 + i * 2));
      }
    }
    return false;
  }

  /** Starts a new generation: a snapshot at an exactly known WAL position. */
  function startGeneration(): Promise<void> {
    return snapshotSlots.run(takeSnapshot);
  }

  async function takeSnapshot(): Promise<void> {
    // What the previous generation collected goes first: its txids come before the new ones.
    if (!(await flush())) throw storageBacklog();
    const reason = pendingReason;
    closeConnections(conns);
    conns = null;
    conns = await openConnections();
    const c = conns;
    let header: WalHeader | null = null;
    let position: WalPosition | null = null;
    let walInode: number | null = null;
    let generation = "";
    // Under the write lock nothing commits, so the reader's snapshot and the end of the
    // WAL's committed frames are the same point.
    await withProcessLock(dbPath, async () => {
      if (!(await takeWriteLock(c.lock, 100))) {
        throw new WalsyncError(
          "database",
          `database ${name} stayed locked by a writer for seconds; will retry`,
        );
      }
      try {
        beginRead(c.readers[0]);
        c.active = 0;
        generation = newGenerationId();
        walInode = (await stampOf(walPath))?.ino ?? null;
        // The end of the last commit, walked in bounded pieces (the WAL may be large).
        await withProcessLock(walReadBufferKey, async () => {
          let read = await readWalFile(walPath, null, null, segmentBytes, walReadBuffer);
          while (read && !read.restarted) {
            header = read.header;
            position = read.end;
            if (!read.more) break;
            read = await readWalFile(walPath, header, position, segmentBytes, walReadBuffer);
          }
        });
      } finally {
        c.lock.exec("ROLLBACK");
      }
    });
    const tempDir = await Deno.makeTempDir({ prefix: "walsync-watch-" });
    try {
      const copy = join(tempDir, "snapshot.db");
      // The backup reads inside reader 0's open transaction: the state at the lock above.
      await backup(c.readers[0], copy, { rate: -1 });
      const dbHeader = await readDatabaseHeader(copy);
      const size = (await Deno.stat(copy)).size;
      // History hook: the txid follows the head (never below one this process used), and
      // the snapshot links to the object the head named.
      const start = await history.startGeneration(highestTxid + 1);
      const txid = start.txid;
      const key = snapshotKey(name, generation, txid);
      const written = await limiter.run(async () =>
        putFileObject(
          storage,
          key,
          copy,
          await history.signFile(key, copy, {
            ...start.metadata,
            [meta.kind]: "snapshot",
            [meta.db]: name,
            [meta.generation]: generation,
            [meta.txid]: String(txid),
            [meta.created]: new Date().toISOString(),
            [meta.pageSize]: String(dbHeader.pageSize),
            [meta.pageCount]: String(Math.floor(size / dbHeader.pageSize)),
          }),
        )
      );
      await history.advance({ txid, key, sha256: written.sha256 }); // history hook
      stats.bytesUploaded += written.size;
      stats.objectsUploaded++;
      lineage = {
        generation,
        pageSize: dbHeader.pageSize,
        header,
        position,
        txid,
        prevSha256: written.sha256,
        startedAt: Date.now(),
        walInode,
        checkpointedAt: -1,
      };
      shippedTxid = txid;
      highestTxid = Math.max(highestTxid, txid);
      lastStamp = null;
      // The reader may have begun on a fully checkpointed WAL (slot 0): leave it soon.
      onSlotZeroSince = Date.now();
      escapeFast = false;
      lastDbStamp = await stampOf(dbPath);
      checkpointDue = false;
      logger.log("INFO", "generation started", fields({ generation, reason, txid }));
      logger.log(
        "INFO",
        "snapshot uploaded",
        fields({ key, bytes: written.size, sha256: written.sha256 }),
      );
    } finally {
      await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * Reads the WAL from our position; follows a restart when it is safe to. `stamp` is the
   * `-wal` file as just seen by the caller.
   */
  async function readNew(
    l: Lineage,
    stamp: FileStamp | null,
  ): Promise<WalFileRead | "new-generation" | null> {
    // `PRAGMA wal_checkpoint(TRUNCATE)` empties the WAL in place (same inode) once every frame
    // is backfilled; like any restart it can only happen after we shipped them (module
    // comment). A WAL that is gone, or a different file, is something else: start over.
    const inode = stamp?.ino ?? null;
    if (l.header !== null && inode === null) {
      pendingReason = "the WAL file disappeared while watched";
      return "new-generation";
    }
    if (l.walInode !== null && inode !== null && inode !== l.walInode) {
      pendingReason = "the WAL file was replaced while watched";
      return "new-generation";
    }
    let read = await readWalFile(walPath, l.header, l.position, segmentBytes, walReadBuffer);
    for (let i = 0; i < 3 && read?.restarted; i++) {
      if (read.header.pageSize !== l.pageSize) return "new-generation";
      // Every frame of the old WAL was shipped before it could restart (module comment).
      l.header = read.header;
      l.position = walStartPosition(read.header);
      read = await readWalFile(walPath, l.header, l.position, segmentBytes, walReadBuffer);
    }
    // Shorter than a header: truncated (checked above that it is the same file), or just
    // created; the next read sees the new header.
    if (read === null) return null;
    if (read.restarted) return "new-generation";
    if (l.header === null) {
      if (read.header.pageSize !== l.pageSize) return "new-generation";
      l.header = read.header;
      l.position = walStartPosition(read.header);
    }
    l.walInode ??= inode;
    return read;
  }

  /** Ends the lineage after collect() found a WAL whose history cannot be continued. */
  function startOver(): void {
    if (pendingReason === "started" || pendingReason === "") {
      pendingReason = "the WAL was reset or its page size changed";
    }
    reset(pendingReason);
  }

  function storageBacklog(): WalsyncError {
    return new WalsyncError("storage", `${pending.length} segment(s) of ${name} wait for upload`);
  }

  /**
   * Reads the WAL's new complete transactions into sealed segments (in memory, in order) and
   * moves the lineage past them. Nothing is uploaded here. Returns "new-generation" when the
   * WAL's history cannot be continued.
   */
  function collect(l: Lineage): Promise<"new-generation" | number> {
    // The frames read point into the shared buffer until they are compressed below.
    return withProcessLock(walReadBufferKey, () => collectPieces(l));
  }

  async function collectPieces(l: Lineage): Promise<"new-generation" | number> {
    let frames = 0;
    // A long backlog is cut into segments of about `segmentBytes`; a bounded number per call
    // so one database cannot hold the others up (`behind` then asks for another call soon).
    behind = true;
    for (let piece = 0; piece < 8; piece++) {
      const stamp = await stampOf(walPath);
      const read = await readNew(l, stamp);
      if (read === "new-generation") return "new-generation";
      if (read === null || read.restarted || read.frameCount === 0) {
        lastStamp = stamp;
        behind = false;
        break;
      }
      const start = l.position!;
      const txidFirst = l.txid + 1;
      const txidLast = l.txid + read.commits;
      const key = walSegmentKey(name, l.generation, txidFirst, txidLast);
      // Compressed right away: a sealed segment waits in memory at a fraction of its size.
      const encoded = encodeSegment(read.frames);
      const metadata = segmentMetadata({
        ...segmentInfoOf(read.header, start, read),
        txidFirst,
        txidLast,
        prevSha256: l.prevSha256,
        created: new Date().toISOString(),
        db: name,
        generation: l.generation,
      });
      Object.assign(metadata, encoded.metadata);
      const body = encoded.body;
      const sha256 = sha256Hex(body);
      // History hook: signed when a signing key is set (a no-op otherwise).
      pending.push({ key, body, metadata: history.sign(key, { ...metadata, sha256 }), txidLast });
      frames += read.frameCount;
      l.position = read.end;
      l.txid = txidLast;
      l.prevSha256 = sha256;
      highestTxid = Math.max(highestTxid, txidLast);
      if (!read.more) {
        // Read to the end of the file as it was at `stamp`.
        lastStamp = stamp;
        behind = false;
        break;
      }
    }
    return frames;
  }

  /** Uploads the sealed segments in order. Returns true when none is left. */
  async function flush(): Promise<boolean> {
    let last: { txid: number; key: string; sha256: string } | undefined;
    while (pending.length > 0) {
      const next = pending[0];
      const written = await limiter.run(() =>
        putBytesObject(storage, next.key, next.body, next.metadata)
      );
      pending.shift();
      stats.bytesUploaded += written.size;
      stats.objectsUploaded++;
      shippedTxid = next.txidLast;
      last = { txid: next.txidLast, key: next.key, sha256: written.sha256 };
    }
    if (last) await history.advance(last); // history hook: the head follows each batch
    return true;
  }

  /** Collects and uploads new frames. Returns false when something was left unshipped. */
  async function ship(): Promise<boolean> {
    const l = lineage!;
    // An unchanged WAL has nothing new: spare the read (most databases, most of the time).
    if (pending.length === 0 && sameStamp(lastStamp, await stampOf(walPath))) return true;
    if ((await collect(l)) === "new-generation") {
      startOver();
      return false;
    }
    return await flush();
  }

  /** Moves the held read transaction to the other reader: the new one first, then the old one ends. */
  function rotateReaders(): void {
    const c = conns!;
    const next = c.active === 0 ? 1 : 0;
    beginRead(c.readers[next]);
    endRead(c.readers[c.active]);
    c.active = next;
  }

  /**
   * After our checkpoint the held reader is on slot 0 (module comment of `checkpoint`). Once
   * the application has committed again, anything it wrote is read into a segment and the
   * held transaction moves to a new reader, which gets a WAL mark: that new reader began
   * after those commits, so it cannot land on slot 0, and it keeps the WAL from restarting
   * until the segment is uploaded and the next sync moves on. Safe without a ship: the
   * reader it leaves saw nothing that is not already collected.
   */
  async function leaveSlotZero(): Promise<void> {
    const l = lineage!;
    if (sameStamp(lastStamp, await stampOf(walPath))) return;
    const before = l.txid;
    const got = await collect(l);
    if (got === "new-generation") {
      startOver();
      return;
    }
    if (l.txid !== before) {
      rotateReaders();
      onSlotZeroSince = 0;
    }
  }

  /**
   * Checkpoints so the WAL can restart. The write lock is held only to read the last few
   * frames into a segment and to run the checkpoint; the upload happens after it is
   * released, so a writer waits for local work only. Those last frames then exist only in
   * memory until uploaded (the WAL may restart over them): if this process died before,
   * the next start takes a fresh snapshot, which holds them.
   */
  async function checkpoint(): Promise<void> {
    const c = conns!;
    const l = lineage!;
    // First pass without the write lock, while our reader holds: it copies everything up to
    // that reader's mark, concurrently with the application's writers, so the locked pass
    // below only has the last few frames left to copy.
    c.readers[c.active === 0 ? 1 : 0].prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
    // Read and upload what is there now, and move our reader up to it, all without the lock,
    // and copy again: under the lock only what was committed in the meantime is left to read
    // and to copy.
    const before = l.txid;
    if ((await collect(l)) === "new-generation") {
      startOver();
      return;
    }
    if (behind) return; // not caught up: the next sync reads on first
    if (l.txid !== before) {
      await flush();
      rotateReaders();
      c.readers[c.active === 0 ? 1 : 0].prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
    }
    // A writer that commits back to back leaves the lock free only for moments, which a
    // short wait rarely catches. The further the WAL has grown past the threshold, the longer
    // we wait inside SQLite's busy handler (which holds up this process's other databases).
    const over = (l.position?.offset ?? 0) / Math.max(1, options.checkpointBytes);
    c.lock.exec(`PRAGMA busy_timeout=${over > 16 ? 200 : over > 4 ? 50 : 5}`);
    if (!(await takeWriteLock(c.lock, 1))) {
      checkpointDue = true; // a writer is busy; try again shortly
      return;
    }
    checkpointDue = false;
    try {
      if ((await collect(l)) === "new-generation") {
        startOver();
        return;
      }
      // Everything must be read before the checkpoint lets the WAL restart over it.
      if (behind) return;
      const idle = c.readers[c.active === 0 ? 1 : 0];
      endRead(c.readers[c.active]);
      try {
        const result = idle.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as Record<
          string,
          number
        >;
        if (result.busy === 0 && result.log === result.checkpointed) {
          // Until a writer restarts the WAL the offset stays past the threshold; checkpointing
          // it again every sync would only take the write lock and log the same line.
          if (l.position) l.checkpointedAt = l.position.offset;
          onSlotZeroSince = Date.now();
          escapeFast = true;
          logger.log("INFO", "checkpointed", fields({ frames: result.log }));
        }
      } finally {
        beginRead(c.readers[c.active]);
      }
    } finally {
      if (c.lock.isOpen && c.lock.isTransaction) c.lock.exec("ROLLBACK");
    }
    lastStamp = await stampOf(walPath);
    await flush();
  }

  /** How soon the next tick is wanted (0: at the next sync). */
  function soon(): number {
    if (!lineage) return 0;
    if (behind) return 1;
    if (onSlotZeroSince !== 0) {
      // An idle database stays on slot 0 harmlessly: look often only for a while, then
      // leave it to the regular syncs.
      const since = Date.now() - onSlotZeroSince;
      if (escapeFast && since < escapeFastForMs) return escapePollMs;
      if (since < slowEscapeForMs) return slowEscapePollMs;
    }
    return checkpointDue ? checkpointRetryMs : 0;
  }

  function checkpointWanted(l: Lineage): boolean {
    const offset = l.position?.offset ?? 0;
    return pending.length === 0 && !behind && offset > options.checkpointBytes &&
      offset !== l.checkpointedAt;
  }

  async function tick(): Promise<number> {
    if (Date.now() < retryAt) return 0;
    try {
      if (lineage && conns && Date.now() < nextSyncAt && !behind) {
        // Between syncs: only what keeps the application's writers fast.
        if (onSlotZeroSince !== 0) await leaveSlotZero();
        if (onSlotZeroSince === 0) {
          // What leaving slot 0 collected goes up now: the WAL may then be checkpointed.
          if (pending.length > 0) await flush();
          if (checkpointWanted(lineage)) await withProcessLock(dbPath, checkpoint);
          else checkpointDue = false;
        }
        return soon();
      }
      nextSyncAt = Date.now() + options.syncIntervalMs;
      await history.renewIfDue(); // history hook: keep the lease
      let dbChanged = false;
      if (lineage && conns) {
        const dbStamp = await stampOf(dbPath);
        const inode = dbStamp?.ino ?? null;
        dbChanged = !sameStamp(dbStamp, lastDbStamp);
        lastDbStamp = dbStamp;
        if (inode !== conns.inode) {
          reset(inode === null ? "database file deleted" : "database file replaced");
          if (inode === null) {
            logger.log("WARN", "database file is missing; waiting for it", fields());
            return 0;
          }
        }
      }
      if (
        lineage && options.snapshotIntervalMs > 0 &&
        Date.now() - lineage.startedAt >= options.snapshotIntervalMs
      ) {
        if (await ship()) reset("snapshot interval");
      }
      if (!lineage) {
        if ((await stampOf(dbPath)) === null) return 0;
        await startGeneration();
      }
      const l = lineage!;
      const before = l.txid;
      const shipped = await ship();
      if (!lineage) return 0; // ship() asked for a new generation; next tick starts it
      // Never while behind: the reader being ended may see frames not read yet, and its
      // successor could begin on a fully checkpointed WAL that is then free to restart.
      if (shipped && !behind && (l.txid !== before || dbChanged)) {
        // Everything the held reader could see is uploaded: move it forward so the WAL
        // behind it can be checkpointed. A reader that began after a commit has a WAL mark,
        // so this also leaves slot 0. A database file written by someone else's checkpoint
        // means one may be waiting for our reader to let the WAL restart (an application's
        // TRUNCATE does): once it has copied everything, the new reader lets it.
        rotateReaders();
        // After new commits the new reader has a WAL mark; after only a checkpoint by someone
        // else it may have begun on a fully copied WAL (slot 0), so watch for the next commit.
        onSlotZeroSince = l.txid !== before ? 0 : Date.now();
        escapeFast = false;
      }
      if (shipped && checkpointWanted(l)) await withProcessLock(dbPath, checkpoint);
      if (lagSince !== 0) {
        logger.log(
          "INFO",
          "caught up",
          fields({ lag_seconds: Math.round((Date.now() - lagSince) / 1000) }),
        );
      }
      lagSince = 0;
      failures = 0;
      stats.lastSyncAt = Date.now();
      return soon();
    } catch (err) {
      stats.syncErrors++;
      failures++;
      if (lagSince === 0) lagSince = Date.now();
      // Backoff: 1 s, 2 s, 4 s … up to 30 s between attempts; frames stay in the WAL meanwhile.
      const wait = Math.min(30_000, 1000 * 2 ** Math.min(failures - 1, 5));
      retryAt = Date.now() + wait;
      nextSyncAt = 0;
      const message = err instanceof Error ? err.message : String(err);
      logger.log(
        failures > 1 ? "WARN" : "ERROR",
        "sync failed; will retry",
        fields({
          error: message,
          lag_seconds: Math.round((Date.now() - lagSince) / 1000),
          retry_in_ms: wait,
        }),
      );
      // Storage trouble keeps the position: the frames wait in the WAL (our read
      // transaction keeps them there) or in sealed segments, and the next attempt ships
      // them. Anything else leaves the state unknown, so the next attempt starts over with
      // a fresh snapshot.
      const keep = err instanceof WalsyncError &&
        (err.kind === "storage" || err.kind === "integrity");
      if (lineage && !keep) reset(`error: ${message}`);
      return 0;
    }
  }

  return {
    status: () => ({
      path: dbPath,
      db: name,
      generation: lineage?.generation,
      txid: shippedTxid,
      lagSeconds: lagSince === 0 ? 0 : (Date.now() - lagSince) / 1000,
      ...stats,
    }),
    tick,
    async close() {
      let shipped = true;
      if ((lineage && conns) || pending.length > 0) {
        try {
          // Everything, however far behind: ship() takes a bounded piece at a time.
          while (lineage && conns) {
            shipped = await ship();
            if (!shipped || !behind) break;
          }
          // Segments of an ended lineage may still wait.
          if (pending.length > 0) shipped = (await flush()) && shipped;
        } catch (err) {
          shipped = false;
          logger.log(
            "ERROR",
            "final sync failed",
            fields({ error: err instanceof Error ? err.message : String(err) }),
          );
        }
      }
      closeConnections(conns);
      conns = null;
      await history.release(); // history hook
      return shipped;
    },
  };
}
