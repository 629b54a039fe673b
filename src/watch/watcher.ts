/**
 * The watcher of one database: wires the pieces of `src/watch/` into the sync step the
 * service calls on every tick. Its state is one record (`state.ts`); the full sync and the
 * light work between syncs are in `sync.ts`; here are the tick, failures and shutdown.
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
import type { Storage } from "../storage/storage.ts";
import { closeConnections } from "./connections.ts";
import { stampOf } from "./stamp.ts";
import { lagWarnAfterMs } from "./lag.ts";
import type { Limiter } from "./locks.ts";
import { recordFailure } from "./schedule.ts";
import {
  createWatchState,
  currentLag,
  fieldsOf,
  resetGeneration,
  ship,
  statusOf,
  type WatchState,
} from "./state.ts";
import { beginGeneration, checkDatabaseFile, lightStep, syncStep } from "./sync.ts";
import type { DatabaseWatcher, WatchOptions } from "./types.ts";

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
  const state = createWatchState(dbPath, storage, limiter, options, name, history);
  return {
    status: () => statusOf(state),
    tick: () => tick(state),
    close: () => finalSync(state),
  };
}

/** One tick: the light work between syncs, or a full sync when one is due (or behind). */
async function tick(s: WatchState): Promise<number> {
  if (Date.now() < s.schedule.retryAt) return 0;
  try {
    if (s.lineage && s.conns && Date.now() < s.schedule.nextSyncAt && !s.collector.behind) {
      return await lightStep(s, s.lineage);
    }
    return await syncStep(s);
  } catch (err) {
    return failed(s, err);
  } finally {
    reportLag(s);
  }
}

/** Logs a failed attempt and schedules the next one (backoff); returns 0. */
function failed(s: WatchState, err: unknown): number {
  // A lost lease is not retried: the caller stops this watcher and says so once.
  if (s.history.lostLease()) return 0;
  s.syncErrors++;
  if (s.lag.failingSince === 0) s.lag.failingSince = Date.now();
  const wait = recordFailure(s.schedule, Date.now());
  const message = err instanceof Error ? err.message : String(err);
  s.logger.log(
    s.schedule.failures > 1 ? "WARN" : "ERROR",
    "sync failed; will retry",
    fieldsOf(s, {
      error: message,
      lag_seconds: Math.round((Date.now() - s.lag.failingSince) / 1000),
      retry_in_ms: wait,
    }),
  );
  // Storage trouble keeps the position: the frames wait in the WAL (our read
  // transaction keeps them there) or in sealed segments, and the next attempt ships
  // them. Anything else leaves the state unknown, so the next attempt starts over with
  // a fresh snapshot.
  const keep = err instanceof WalsyncError &&
    (err.kind === "storage" || err.kind === "integrity");
  if (s.lineage && !keep) resetGeneration(s, `error: ${message}`);
  return 0;
}

/**
 * Says once when shipping has fallen far behind without any error (a slow upload, a huge
 * backlog); failures say so themselves. "caught up" follows when the lag is 0 again.
 */
function reportLag(s: WatchState): void {
  if (s.behindReportedSince !== 0 || s.lag.failingSince !== 0) return;
  const seconds = currentLag(s);
  if (seconds * 1000 < lagWarnAfterMs(s.options.syncIntervalMs)) return;
  s.behindReportedSince = Date.now() - seconds * 1000;
  s.logger.log("WARN", "replication behind", fieldsOf(s, { lag_seconds: Math.round(seconds) }));
}

/**
 * At close: ships everything still in the WAL or the upload queue, then closes the
 * connections. Returns false when something was left unshipped.
 */
async function finalSync(s: WatchState): Promise<boolean> {
  let shipped = true;
  // The history is another process's now: nothing more may be written to it.
  if (s.history.lostLease()) shipped = false;
  else {
    try {
      // A watcher whose storage keeps failing has said so already; it does not try once more
      // on the way out: a generation it holds fails to ship below (exit 1), one it could not
      // start stays unstarted.
      const storageWorks = s.lag.failingSince === 0;
      // The file replaced since the last sync: the connections still read the old one, and
      // what the path holds now needs a generation of its own.
      if (storageWorks && s.lineage && s.conns) await checkDatabaseFile(s, s.conns);
      // No generation (the file was replaced or created since the last sync): what the
      // database holds now is not backed up yet, so start one.
      if (storageWorks && !s.lineage && (await stampOf(s.dbPath)) !== null) {
        await beginGeneration(s);
      }
      // Everything, however far behind: ship() takes a bounded piece at a time.
      while (s.lineage && s.conns) {
        shipped = await ship(s);
        if (!shipped || !s.collector.behind) break;
      }
      // Segments of an ended lineage may still wait.
      if (s.uploader.pendingCount > 0) shipped = (await s.uploader.flush()) && shipped;
    } catch (err) {
      shipped = false;
      s.logger.log(
        "ERROR",
        "final sync failed",
        fieldsOf(s, { error: err instanceof Error ? err.message : String(err) }),
      );
    }
  }
  closeConnections(s.conns);
  s.conns = null;
  return shipped;
}
