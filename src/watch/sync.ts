/**
 * The two steps a watcher's tick runs over its {@link WatchState}: the full sync (start a
 * generation if needed, ship, move the held reader, checkpoint if due) and the light work
 * between syncs (leave read slot 0, run a checkpoint that is due). Why each move is safe is
 * in the module comment of `watcher.ts` and in `docs/replication.md`.
 * @module
 */
import { withProcessLock } from "./locks.ts";
import { checkpoint } from "./checkpoint.ts";
import { closeConnections, type Connections, rotateReaders } from "./connections.ts";
import { startGeneration } from "./generation.ts";
import { readAll } from "./lag.ts";
import type { Lineage } from "./lineage.ts";
import { nextTickIn } from "./schedule.ts";
import { sameStamp, stampOf } from "./stamp.ts";
import {
  collect,
  currentLag,
  fieldsOf,
  resetGeneration,
  ship,
  wantsCheckpoint,
  type WatchState,
} from "./state.ts";

/** Starts a new generation: what the previous one collected goes first. */
export async function beginGeneration(s: WatchState): Promise<void> {
  // Its txids come before the new ones.
  await s.uploader.flush();
  closeConnections(s.conns);
  s.conns = null;
  const started = await startGeneration(s.target, s.highestTxid + 1);
  s.conns = started.conns;
  s.lineage = started.lineage;
  s.uploader.recordUpload(started.written.size, started.lineage.txid);
  // Logged once the upload is counted: a status read after this line sees it.
  const { written } = started;
  const { generation, txid } = started.lineage;
  s.logger.log(
    "INFO",
    "generation started",
    fieldsOf(s, { generation, reason: s.pendingReason, txid }),
  );
  s.logger.log(
    "INFO",
    "snapshot uploaded",
    fieldsOf(s, { key: written.key, bytes: written.size, sha256: written.sha256 }),
  );
  s.highestTxid = Math.max(s.highestTxid, started.lineage.txid);
  s.collector.forget();
  readAll(s.lag); // the snapshot holds everything committed before it
  // The reader may have begun on a fully checkpointed WAL (slot 0): leave it soon.
  s.schedule.onSlotZeroSince = Date.now();
  s.schedule.escapeFast = false;
  s.lastDbStamp = await stampOf(s.dbPath);
  s.schedule.checkpointDue = false;
}

/**
 * After our checkpoint the held reader is on slot 0 (module comment of `checkpoint.ts`).
 * Once the application has committed again, anything it wrote is read into a segment and
 * the held transaction moves to a new reader, which gets a WAL mark: that new reader began
 * after those commits, so it cannot land on slot 0, and it keeps the WAL from restarting
 * until the segment is uploaded and the next sync moves on. Safe without a ship: the
 * reader it leaves saw nothing that is not already collected.
 */
async function leaveSlotZero(s: WatchState): Promise<void> {
  const l = s.lineage!;
  if (s.collector.unchanged(s.conns!.index)) return;
  const before = l.txid;
  const outcome = await collect(s, l);
  if (outcome.newGeneration !== undefined) {
    resetGeneration(s, outcome.newGeneration);
    return;
  }
  if (l.txid !== before) {
    rotateReaders(s.conns!);
    s.schedule.onSlotZeroSince = 0;
  }
}

/** Our own checkpoint, under this process's lock of the database file. */
async function runCheckpoint(s: WatchState): Promise<void> {
  const c = s.conns!;
  const l = s.lineage!;
  const outcome = await withProcessLock(s.dbPath, () =>
    checkpoint({
      conns: c,
      lineage: l,
      collect: () => collect(s, l),
      collector: s.collector,
      uploader: s.uploader,
      schedule: s.schedule,
      checkpointBytes: s.options.checkpointBytes,
      logger: s.logger,
      fields: fieldsOf(s),
    }));
  if (outcome) resetGeneration(s, outcome.newGeneration);
}

/**
 * Between syncs: only what keeps the application's writers fast. Returns how soon the next
 * tick is wanted (see `nextTickIn`).
 */
export async function lightStep(s: WatchState, l: Lineage): Promise<number> {
  if (s.schedule.onSlotZeroSince !== 0) await leaveSlotZero(s);
  if (s.schedule.onSlotZeroSince === 0 && s.lineage) {
    // What leaving slot 0 collected goes up now: the WAL may then be checkpointed.
    if (s.uploader.pendingCount > 0) await s.uploader.flush();
    if (wantsCheckpoint(s, l)) await runCheckpoint(s);
    else s.schedule.checkpointDue = false;
  }
  return nextTickIn(s.schedule, s.lineage !== null, s.collector.behind, Date.now());
}

/**
 * Notices a database file deleted or replaced (a new generation then starts). Returns
 * whether the file was written since the last sync (someone else's checkpoint), or null
 * when it is missing.
 */
export async function checkDatabaseFile(s: WatchState, c: Connections): Promise<boolean | null> {
  const dbStamp = await stampOf(s.dbPath);
  const inode = dbStamp?.ino ?? null;
  const changed = !sameStamp(dbStamp, s.lastDbStamp);
  s.lastDbStamp = dbStamp;
  if (inode !== c.inode) {
    resetGeneration(s, inode === null ? "database file deleted" : "database file replaced");
    if (inode === null) {
      s.logger.log("WARN", "database file is missing; waiting for it", fieldsOf(s));
      return null;
    }
  }
  return changed;
}

/**
 * A full sync: generation if needed, ship, move the held reader, checkpoint if due. Returns
 * how soon the next tick is wanted (see `nextTickIn`).
 */
export async function syncStep(s: WatchState): Promise<number> {
  const { schedule, options } = s;
  schedule.nextSyncAt = Date.now() + options.syncIntervalMs;
  await s.history.renewIfDue(); // history hook: keep the lease
  let dbChanged = false;
  if (s.lineage && s.conns) {
    const changed = await checkDatabaseFile(s, s.conns);
    if (changed === null) return 0;
    dbChanged = changed;
  }
  if (
    s.lineage && options.snapshotIntervalMs > 0 &&
    Date.now() - s.lineage.startedAt >= options.snapshotIntervalMs
  ) {
    if (await ship(s)) resetGeneration(s, "snapshot interval");
  }
  if (!s.lineage) {
    if ((await stampOf(s.dbPath)) === null) return 0;
    await beginGeneration(s);
  }
  const l = s.lineage!;
  const before = l.txid;
  const shipped = await ship(s);
  if (!s.lineage) return 0; // ship() asked for a new generation; next tick starts it
  // Never while behind: the reader being ended may see frames not read yet, and its
  // successor could begin on a fully checkpointed WAL that is then free to restart.
  if (shipped && !s.collector.behind && (l.txid !== before || dbChanged)) {
    // Everything the held reader could see is uploaded: move it forward so the WAL
    // behind it can be checkpointed. A reader that began after a commit has a WAL mark,
    // so this also leaves slot 0. A database file written by someone else's checkpoint
    // means one may be waiting for our reader to let the WAL restart (an application's
    // TRUNCATE does): once it has copied everything, the new reader lets it.
    rotateReaders(s.conns!);
    // After new commits the new reader has a WAL mark; after only a checkpoint by someone
    // else it may have begun on a fully copied WAL (slot 0), so watch for the next commit.
    schedule.onSlotZeroSince = l.txid !== before ? 0 : Date.now();
    schedule.escapeFast = false;
  }
  if (shipped && wantsCheckpoint(s, l)) await runCheckpoint(s);
  reportCaughtUp(s);
  s.lag.failingSince = 0;
  schedule.failures = 0;
  s.lastSyncAt = Date.now();
  return nextTickIn(schedule, s.lineage !== null, s.collector.behind, Date.now());
}

/** After failures, at the first sync that succeeds; after a slow stretch, once it is over. */
function reportCaughtUp(s: WatchState): void {
  const behindSince = s.lag.failingSince || s.behindReportedSince;
  if (s.lag.failingSince !== 0 || (s.behindReportedSince !== 0 && currentLag(s) === 0)) {
    s.logger.log(
      "INFO",
      "caught up",
      fieldsOf(s, { lag_seconds: Math.round((Date.now() - behindSince) / 1000) }),
    );
    s.behindReportedSince = 0;
  }
}
