/**
 * The watcher of one database: wires the pieces of `src/watch/` into the sync step the
 * service calls on every tick.
 *
 * How the WAL is kept from being lost under us (see `docs/replication.md` for the argument):
 * at every moment after a generation starts, this process holds a read transaction on the
 * database. While it does, no other process can restart the WAL past frames we have not
 * shipped: a reader with a read mark blocks the restart, and a reader on the database file
 * alone blocks every backfill. Each sync ships what the WAL holds, then opens a read
 * transaction on the second reader connection before closing the first, so there is no gap.
 * Our own checkpoints run under the write lock, after everything has been shipped.
 * @module
 */
import { basename, resolve } from "node:path";
import { WalsyncError } from "../support/errors.ts";
import { createHistoryWriter, type HistoryWriter } from "../history/writer.ts";
import type { LogFields } from "../support/log.ts";
import type { Storage } from "../storage/storage.ts";
import { checkpoint } from "./checkpoint.ts";
import { type CollectedSegment, type CollectOutcome, createCollector } from "./collector.ts";
import { closeConnections, type Connections, rotateReaders } from "./connections.ts";
import { type GenerationTarget, startGeneration } from "./generation.ts";
import {
  createLagClock,
  lagSeconds,
  lagWarnAfterMs,
  readAll,
  sawUnread,
  seenAtOfSealed,
} from "./lag.ts";
import type { Lineage } from "./lineage.ts";
import { type Limiter, withProcessLock } from "./locks.ts";
import { checkpointWanted, createSchedule, nextTickIn, recordFailure } from "./schedule.ts";
import { type FileStamp, sameStamp, stampOf } from "./stamp.ts";
import type { DatabaseWatcher, WatchOptions } from "./types.ts";
import { createUploader } from "./uploader.ts";

/**
 * Creates the watcher of one database.
 * @example
 * const watcher = createWatcher("app.db", storage, createLimiter(8), {
 *   ...watchDefaults,
 *   logger: stderrLogger(false),
 * });
 * await watcher.tick();
 * await watcher.close();
 */
export function createWatcher(
  path: string,
  storage: Storage,
  limiter: Limiter,
  options: WatchOptions,
  name: string = basename(path),
): DatabaseWatcher {
  const given = resolve(path);
  let inner: DatabaseWatcher | null = null;
  // History hook (src/history/writer.ts): lease, txids from the head, head after each batch.
  const history = options.history ?? createHistoryWriter(storage, name, { logger: options.logger });
  /** Why this watcher stopped for good (its lease was taken over), once it has. */
  let stopped: string | undefined;
  const step = async (): Promise<number> => {
    if (inner === null) {
      const real = await realPathOf(given);
      if (real === null) {
        // History hook: a lease taken at start stays held while the file is awaited (a
        // lost one is named when the first generation starts).
        await history.renewIfDue().catch(() => {});
        return 0; // not there yet: waiting for it, as a missing file
      }
      if (real !== given) {
        options.logger.log("INFO", "database path resolved", { db: name, path: given, real });
      }
      inner = watchDatabase(real, storage, limiter, options, name, history);
    }
    return await inner.tick();
  };
  return {
    status: () => ({
      ...(inner?.status() ?? {
        path: given,
        db: name,
        lagSeconds: 0,
        bytesUploaded: 0,
        objectsUploaded: 0,
        syncErrors: 0,
        lastSyncAt: 0,
      }),
      running: stopped === undefined,
      ...(stopped !== undefined ? { stopped } : {}),
    }),
    async tick() {
      if (stopped !== undefined) return 0;
      const soon = await step();
      // Another process took the history over: never fight it for the lease; say so once,
      // let go of the database, and let the service see this watcher has stopped.
      const lost = history.lostLease();
      if (lost) {
        stopped = lost.message;
        options.logger.log("ERROR", lost.message, { db: name });
        await inner?.close();
        return 0;
      }
      return soon;
    },
    async close() {
      const shipped = await (inner?.close() ?? Promise.resolve(true));
      await history.release(); // history hook
      return shipped;
    },
  };
}

/** The database's real file (symlinks resolved), or null when it does not exist yet. */
async function realPathOf(path: string): Promise<string | null> {
  try {
    return await Deno.realPath(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    return path; // the watcher's own checks name the problem
  }
}

/**
 * The watcher of the database whose real file (no symlink in its path) is `dbPath`: SQLite
 * keeps `-wal` and `-shm` beside the real file, not beside a link (docs/sqlite-facts.md, fact 6).
 */
function watchDatabase(
  dbPath: string,
  storage: Storage,
  limiter: Limiter,
  options: WatchOptions,
  name: string,
  history: HistoryWriter,
): DatabaseWatcher {
  const walPath = `${dbPath}-wal`;
  const logger = options.logger;
  const collector = createCollector(walPath, name);
  const uploader = createUploader(storage, limiter, history);
  const schedule = createSchedule();
  let conns: Connections | null = null;
  let lineage: Lineage | null = null;
  /** Why the next generation starts. */
  let pendingReason = "started";
  const lag = createLagClock();
  /** When the lag reported by "replication behind" began (0: not reported). */
  let behindReportedSince = 0;
  /** Highest txid this process gave to an object of this database. */
  let highestTxid = -1;
  /** The database file as seen at the last sync (its writes come from checkpoints). */
  let lastDbStamp: FileStamp | null = null;
  let syncErrors = 0;
  let lastSyncAt = 0;

  const fields = (extra: LogFields = {}): LogFields => ({ db: name, ...extra });
  const target: GenerationTarget = {
    dbPath,
    walPath,
    name,
    history,
    storage,
    limiter,
    logger,
    fields: fields(),
  };

  function reset(reason: string): void {
    closeConnections(conns);
    conns = null;
    lineage = null;
    pendingReason = reason;
    collector.clearBehind();
  }

  function emit(segment: CollectedSegment): void {
    uploader.push({ ...segment, seenAt: seenAtOfSealed(lag, Date.now()) });
    highestTxid = Math.max(highestTxid, segment.txidLast);
  }

  /** Notes when SQLite has published commits not collected yet (cheap: one read of the -shm header). */
  function noticeCommits(): void {
    if (lag.unreadSince !== 0 || !conns || !lineage) return;
    if (!collector.unchanged(conns.index)) sawUnread(lag, Date.now());
  }

  /** The age of the oldest commit not yet durable here, in seconds (see lag.ts). */
  function currentLag(): number {
    noticeCommits();
    return lagSeconds(lag, uploader.oldestSeenAt, lineage !== null, Date.now());
  }

  async function collect(l: Lineage): Promise<CollectOutcome> {
    noticeCommits();
    const outcome = await collector.collect(l, conns!.index, emit);
    if (outcome.newGeneration === undefined && !outcome.behind) readAll(lag);
    return outcome;
  }

  /** Starts a new generation: what the previous one collected goes first. */
  async function begin(): Promise<void> {
    // Its txids come before the new ones.
    await uploader.flush();
    closeConnections(conns);
    conns = null;
    const started = await startGeneration(target, highestTxid + 1);
    conns = started.conns;
    lineage = started.lineage;
    uploader.recordUpload(started.written.size, started.lineage.txid);
    // Logged once the upload is counted: a status read after this line sees it.
    const { written } = started;
    const { generation, txid } = started.lineage;
    logger.log("INFO", "generation started", fields({ generation, reason: pendingReason, txid }));
    logger.log(
      "INFO",
      "snapshot uploaded",
      fields({ key: written.key, bytes: written.size, sha256: written.sha256 }),
    );
    highestTxid = Math.max(highestTxid, started.lineage.txid);
    collector.forget();
    readAll(lag); // the snapshot holds everything committed before it
    // The reader may have begun on a fully checkpointed WAL (slot 0): leave it soon.
    schedule.onSlotZeroSince = Date.now();
    schedule.escapeFast = false;
    lastDbStamp = await stampOf(dbPath);
    schedule.checkpointDue = false;
  }

  /** Collects and uploads new frames. Returns false when something was left unshipped. */
  async function ship(): Promise<boolean> {
    const l = lineage!;
    // An unchanged WAL has nothing new: spare the read (most databases, most of the time).
    if (uploader.pendingCount === 0 && collector.unchanged(conns!.index)) return true;
    const outcome = await collect(l);
    if (outcome.newGeneration !== undefined) {
      reset(outcome.newGeneration);
      return false;
    }
    return await uploader.flush();
  }

  /**
   * After our checkpoint the held reader is on slot 0 (module comment of `checkpoint.ts`).
   * Once the application has committed again, anything it wrote is read into a segment and
   * the held transaction moves to a new reader, which gets a WAL mark: that new reader began
   * after those commits, so it cannot land on slot 0, and it keeps the WAL from restarting
   * until the segment is uploaded and the next sync moves on. Safe without a ship: the
   * reader it leaves saw nothing that is not already collected.
   */
  async function leaveSlotZero(): Promise<void> {
    const l = lineage!;
    if (collector.unchanged(conns!.index)) return;
    const before = l.txid;
    const outcome = await collect(l);
    if (outcome.newGeneration !== undefined) {
      reset(outcome.newGeneration);
      return;
    }
    if (l.txid !== before) {
      rotateReaders(conns!);
      schedule.onSlotZeroSince = 0;
    }
  }

  function wantsCheckpoint(l: Lineage): boolean {
    return checkpointWanted({
      offset: l.position?.offset ?? 0,
      checkpointedAt: l.checkpointedAt,
      pending: uploader.pendingCount,
      behind: collector.behind,
      checkpointBytes: options.checkpointBytes,
    });
  }

  async function runCheckpoint(): Promise<void> {
    const c = conns!;
    const l = lineage!;
    const outcome = await withProcessLock(dbPath, () =>
      checkpoint({
        conns: c,
        lineage: l,
        collect: () => collect(l),
        collector,
        uploader,
        schedule,
        checkpointBytes: options.checkpointBytes,
        logger,
        fields: fields(),
      }));
    if (outcome) reset(outcome.newGeneration);
  }

  /** Between syncs: only what keeps the application's writers fast. */
  async function lightStep(l: Lineage): Promise<number> {
    if (schedule.onSlotZeroSince !== 0) await leaveSlotZero();
    if (schedule.onSlotZeroSince === 0 && lineage) {
      // What leaving slot 0 collected goes up now: the WAL may then be checkpointed.
      if (uploader.pendingCount > 0) await uploader.flush();
      if (wantsCheckpoint(l)) await runCheckpoint();
      else schedule.checkpointDue = false;
    }
    return nextTickIn(schedule, lineage !== null, collector.behind, Date.now());
  }

  /**
   * Notices a database file deleted or replaced (a new generation then starts). Returns
   * whether the file was written since the last sync (someone else's checkpoint), or null
   * when it is missing.
   */
  async function checkDatabaseFile(c: Connections): Promise<boolean | null> {
    const dbStamp = await stampOf(dbPath);
    const inode = dbStamp?.ino ?? null;
    const changed = !sameStamp(dbStamp, lastDbStamp);
    lastDbStamp = dbStamp;
    if (inode !== c.inode) {
      reset(inode === null ? "database file deleted" : "database file replaced");
      if (inode === null) {
        logger.log("WARN", "database file is missing; waiting for it", fields());
        return null;
      }
    }
    return changed;
  }

  /** A full sync: generation if needed, ship, move the held reader, checkpoint if due. */
  async function syncStep(): Promise<number> {
    schedule.nextSyncAt = Date.now() + options.syncIntervalMs;
    await history.renewIfDue(); // history hook: keep the lease
    let dbChanged = false;
    if (lineage && conns) {
      const changed = await checkDatabaseFile(conns);
      if (changed === null) return 0;
      dbChanged = changed;
    }
    if (
      lineage && options.snapshotIntervalMs > 0 &&
      Date.now() - lineage.startedAt >= options.snapshotIntervalMs
    ) {
      if (await ship()) reset("snapshot interval");
    }
    if (!lineage) {
      if ((await stampOf(dbPath)) === null) return 0;
      await begin();
    }
    const l = lineage!;
    const before = l.txid;
    const shipped = await ship();
    if (!lineage) return 0; // ship() asked for a new generation; next tick starts it
    // Never while behind: the reader being ended may see frames not read yet, and its
    // successor could begin on a fully checkpointed WAL that is then free to restart.
    if (shipped && !collector.behind && (l.txid !== before || dbChanged)) {
      // Everything the held reader could see is uploaded: move it forward so the WAL
      // behind it can be checkpointed. A reader that began after a commit has a WAL mark,
      // so this also leaves slot 0. A database file written by someone else's checkpoint
      // means one may be waiting for our reader to let the WAL restart (an application's
      // TRUNCATE does): once it has copied everything, the new reader lets it.
      rotateReaders(conns!);
      // After new commits the new reader has a WAL mark; after only a checkpoint by someone
      // else it may have begun on a fully copied WAL (slot 0), so watch for the next commit.
      schedule.onSlotZeroSince = l.txid !== before ? 0 : Date.now();
      schedule.escapeFast = false;
    }
    if (shipped && wantsCheckpoint(l)) await runCheckpoint();
    // After failures, at the first sync that succeeds; after a slow stretch, once it is over.
    const behindSince = lag.failingSince || behindReportedSince;
    if (lag.failingSince !== 0 || (behindReportedSince !== 0 && currentLag() === 0)) {
      logger.log(
        "INFO",
        "caught up",
        fields({ lag_seconds: Math.round((Date.now() - behindSince) / 1000) }),
      );
      behindReportedSince = 0;
    }
    lag.failingSince = 0;
    schedule.failures = 0;
    lastSyncAt = Date.now();
    return nextTickIn(schedule, lineage !== null, collector.behind, Date.now());
  }

  function failed(err: unknown): number {
    // A lost lease is not retried: the caller stops this watcher and says so once.
    if (history.lostLease()) return 0;
    syncErrors++;
    if (lag.failingSince === 0) lag.failingSince = Date.now();
    const wait = recordFailure(schedule, Date.now());
    const message = err instanceof Error ? err.message : String(err);
    logger.log(
      schedule.failures > 1 ? "WARN" : "ERROR",
      "sync failed; will retry",
      fields({
        error: message,
        lag_seconds: Math.round((Date.now() - lag.failingSince) / 1000),
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

  /**
   * Says once when shipping has fallen far behind without any error (a slow upload, a huge
   * backlog); failures say so themselves. "caught up" follows when the lag is 0 again.
   */
  function reportLag(): void {
    if (behindReportedSince !== 0 || lag.failingSince !== 0) return;
    const seconds = currentLag();
    if (seconds * 1000 < lagWarnAfterMs(options.syncIntervalMs)) return;
    behindReportedSince = Date.now() - seconds * 1000;
    logger.log("WARN", "replication behind", fields({ lag_seconds: Math.round(seconds) }));
  }

  async function tick(): Promise<number> {
    if (Date.now() < schedule.retryAt) return 0;
    try {
      if (lineage && conns && Date.now() < schedule.nextSyncAt && !collector.behind) {
        return await lightStep(lineage);
      }
      return await syncStep();
    } catch (err) {
      return failed(err);
    } finally {
      reportLag();
    }
  }

  async function close(): Promise<boolean> {
    let shipped = true;
    // The history is another process's now: nothing more may be written to it.
    if (history.lostLease()) shipped = false;
    else if ((lineage && conns) || uploader.pendingCount > 0) {
      try {
        // Everything, however far behind: ship() takes a bounded piece at a time.
        while (lineage && conns) {
          shipped = await ship();
          if (!shipped || !collector.behind) break;
        }
        // Segments of an ended lineage may still wait.
        if (uploader.pendingCount > 0) shipped = (await uploader.flush()) && shipped;
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
    return shipped;
  }

  return {
    status: () => ({
      path: dbPath,
      db: name,
      generation: lineage?.generation,
      txid: uploader.shippedTxid,
      lagSeconds: currentLag(),
      ...uploader.stats,
      syncErrors,
      lastSyncAt,
    }),
    tick,
    close,
  };
}
