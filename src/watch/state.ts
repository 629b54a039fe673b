/**
 * What the watcher of one database keeps between ticks, in one explicit record, and the
 * small operations on it that the steps of `sync.ts` and `watcher.ts` share: end a
 * generation, collect new frames into the upload queue, ship, measure the lag.
 * @module
 */
import type { HistoryWriter } from "../history/writer.ts";
import type { LogFields, Logger } from "../support/log.ts";
import type { Storage } from "../storage/storage.ts";
import {
  type CollectedSegment,
  type Collector,
  type CollectOutcome,
  createCollector,
} from "./collector.ts";
import { closeConnections, type Connections } from "./connections.ts";
import type { GenerationTarget } from "./generation.ts";
import {
  createLagClock,
  type LagClock,
  lagSeconds,
  readAll,
  sawUnread,
  seenAtOfSealed,
} from "./lag.ts";
import type { Lineage } from "./lineage.ts";
import type { Limiter } from "./locks.ts";
import { checkpointWanted, createSchedule, type Schedule } from "./schedule.ts";
import type { FileStamp } from "./stamp.ts";
import type { WatchOptions, WatchStatus } from "./types.ts";
import { createUploader, type Uploader } from "./uploader.ts";

/** The state of the watcher of one database (whose real file is `dbPath`). */
export interface WatchState {
  /** The database's real file (no symlink in its path). */
  readonly dbPath: string;
  /** Its `-wal`. */
  readonly walPath: string;
  /** Name in the bucket. */
  readonly name: string;
  /** The watcher's settings. */
  readonly options: WatchOptions;
  /** Where events go (`options.logger`). */
  readonly logger: Logger;
  /** Lease, txids and head of this database's history. */
  readonly history: HistoryWriter;
  /** Reads new WAL frames into segments. */
  readonly collector: Collector;
  /** The upload queue of sealed segments. */
  readonly uploader: Uploader;
  /** Timing state. */
  readonly schedule: Schedule;
  /** What the oldest commit not yet durable is (see `lag.ts`). */
  readonly lag: LagClock;
  /** Where a new generation's snapshot goes. */
  readonly target: GenerationTarget;
  /** Our connections while a generation runs. */
  conns: Connections | null;
  /** The running generation's lineage, null when none runs. */
  lineage: Lineage | null;
  /** Why the next generation starts. */
  pendingReason: string;
  /** When the lag reported by "replication behind" began (0: not reported). */
  behindReportedSince: number;
  /** Highest txid this process gave to an object of this database. */
  highestTxid: number;
  /** The database file as seen at the last sync (its writes come from checkpoints). */
  lastDbStamp: FileStamp | null;
  /** Failed sync attempts since start. */
  syncErrors: number;
  /** When the last successful sync ended (ms since epoch), 0 before the first. */
  lastSyncAt: number;
}

/** The state of a watcher that has not started a generation yet. */
export function createWatchState(
  dbPath: string,
  storage: Storage,
  limiter: Limiter,
  options: WatchOptions,
  name: string,
  history: HistoryWriter,
): WatchState {
  const walPath = `${dbPath}-wal`;
  const logger = options.logger;
  return {
    dbPath,
    walPath,
    name,
    options,
    logger,
    history,
    collector: createCollector(walPath, name),
    uploader: createUploader(storage, limiter, history),
    schedule: createSchedule(),
    lag: createLagClock(),
    target: { dbPath, walPath, name, history, storage, limiter, logger, fields: { db: name } },
    conns: null,
    lineage: null,
    pendingReason: "started",
    behindReportedSince: 0,
    highestTxid: -1,
    lastDbStamp: null,
    syncErrors: 0,
    lastSyncAt: 0,
  };
}

/** The fields every log line of this database carries, and `extra`. */
export function fieldsOf(s: WatchState, extra: LogFields = {}): LogFields {
  return { db: s.name, ...extra };
}

/** Ends the running generation: the next sync starts a new one, for `reason`. */
export function resetGeneration(s: WatchState, reason: string): void {
  closeConnections(s.conns);
  s.conns = null;
  s.lineage = null;
  s.pendingReason = reason;
  s.collector.clearBehind();
}

/** Queues a sealed segment for upload. */
function emit(s: WatchState, segment: CollectedSegment): void {
  s.uploader.push({ ...segment, seenAt: seenAtOfSealed(s.lag, Date.now()) });
  s.highestTxid = Math.max(s.highestTxid, segment.txidLast);
}

/** Notes when SQLite has published commits not collected yet (cheap: one read of the -shm header). */
function noticeCommits(s: WatchState, now: number): void {
  if (s.lag.unreadSince !== 0 || !s.conns || !s.lineage) return;
  if (!s.collector.unchanged(s.conns.index)) sawUnread(s.lag, now);
}

/** The age of the oldest commit not yet durable here, in seconds (see lag.ts). */
export function currentLag(s: WatchState): number {
  // One reading of the clock: a commit first noticed now is 0 s old, not a tick older.
  const now = Date.now();
  noticeCommits(s, now);
  return lagSeconds(s.lag, s.uploader.oldestSeenAt, s.lineage !== null, now);
}

/** Reads new frames of lineage `l` into the upload queue. */
export async function collect(s: WatchState, l: Lineage): Promise<CollectOutcome> {
  noticeCommits(s, Date.now());
  const outcome = await s.collector.collect(l, s.conns!.index, (segment) => emit(s, segment));
  if (outcome.newGeneration === undefined && !outcome.behind) readAll(s.lag);
  return outcome;
}

/** Collects and uploads new frames. Returns false when something was left unshipped. */
export async function ship(s: WatchState): Promise<boolean> {
  const l = s.lineage!;
  // An unchanged WAL has nothing new: spare the read (most databases, most of the time).
  if (s.uploader.pendingCount === 0 && s.collector.unchanged(s.conns!.index)) return true;
  const outcome = await collect(s, l);
  if (outcome.newGeneration !== undefined) {
    resetGeneration(s, outcome.newGeneration);
    return false;
  }
  return await s.uploader.flush();
}

/** Whether our own checkpoint of lineage `l` is due (see `schedule.ts`). */
export function wantsCheckpoint(s: WatchState, l: Lineage): boolean {
  return checkpointWanted({
    offset: l.position?.offset ?? 0,
    checkpointedAt: l.checkpointedAt,
    pending: s.uploader.pendingCount,
    behind: s.collector.behind,
    checkpointBytes: s.options.checkpointBytes,
  });
}

/** What the watcher reports (for status and metrics). */
export function statusOf(s: WatchState): WatchStatus {
  return {
    path: s.dbPath,
    db: s.name,
    generation: s.lineage?.generation,
    txid: s.uploader.shippedTxid,
    lagSeconds: currentLag(s),
    ...s.uploader.stats,
    syncErrors: s.syncErrors,
    lastSyncAt: s.lastSyncAt,
  };
}
