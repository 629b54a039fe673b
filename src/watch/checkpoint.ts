/**
 * Our own checkpoint, so the WAL can restart: run only once everything in the WAL is read,
 * with the write lock held just long enough to read the last few frames and copy them.
 *
 * The upload happens after the lock is released, so a writer waits for local work only.
 * Those last frames then exist only in memory until uploaded (the WAL may restart over
 * them): if this process died before, the next start takes a fresh snapshot, which holds
 * them.
 * @module
 */
import type { LogFields, Logger } from "../support/log.ts";
import type { Collector, CollectOutcome } from "./collector.ts";
import {
  type Connections,
  endRead,
  idleReader,
  rotateReaders,
  takeWriteLock,
} from "./connections.ts";
import { beginRead } from "../format/database.ts";
import type { Lineage } from "./lineage.ts";
import type { Schedule } from "./schedule.ts";
import type { Uploader } from "./uploader.ts";

/** What a checkpoint works with (all of one database). */
export interface CheckpointParts {
  /** Our connections. */
  conns: Connections;
  /** The running lineage. */
  lineage: Lineage;
  /** Collects new frames into the uploader's queue. */
  collect: () => Promise<CollectOutcome>;
  /** The collector's state (whether it is behind). */
  collector: Collector;
  /** The upload queue. */
  uploader: Uploader;
  /** Timing state: a busy writer makes the checkpoint due again soon. */
  schedule: Schedule;
  /** The checkpoint threshold in bytes. */
  checkpointBytes: number;
  /** Where events go. */
  logger: Logger;
  /** Fields every log line of this database carries. */
  fields: LogFields;
}

/** Runs a passive checkpoint on a connection without a read transaction. */
function passiveCheckpoint(c: Connections): Record<string, number> {
  return idleReader(c).prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as Record<string, number>;
}

/**
 * Checkpoints so the WAL can restart. Returns a new generation's reason when the WAL's
 * history could not be continued, else null (also when a writer held the lock: the
 * schedule then says the checkpoint is due).
 */
export async function checkpoint(p: CheckpointParts): Promise<{ newGeneration: string } | null> {
  const { conns: c, lineage: l, collector, uploader, schedule } = p;
  // First pass without the write lock, while our reader holds: it copies everything up to
  // that reader's mark, concurrently with the application's writers, so the locked pass
  // below only has the last few frames left to copy.
  passiveCheckpoint(c);
  // Read and upload what is there now, and move our reader up to it, all without the lock,
  // and copy again: under the lock only what was committed in the meantime is left to read
  // and to copy.
  const before = l.txid;
  const first = await p.collect();
  if (first.newGeneration !== undefined) return first;
  if (collector.behind) return null; // not caught up: the next sync reads on first
  if (l.txid !== before) {
    await uploader.flush();
    rotateReaders(c);
    passiveCheckpoint(c);
  }
  // A writer that commits back to back leaves the lock free only for moments, which a
  // short wait rarely catches. The further the WAL has grown past the threshold, the longer
  // we wait inside SQLite's busy handler (which holds up this process's other databases).
  const over = (l.position?.offset ?? 0) / Math.max(1, p.checkpointBytes);
  c.lock.exec(`PRAGMA busy_timeout=${over > 16 ? 200 : over > 4 ? 50 : 5}`);
  if (!(await takeWriteLock(c, 1))) {
    schedule.checkpointDue = true; // a writer is busy; try again shortly
    return null;
  }
  schedule.checkpointDue = false;
  try {
    const last = await p.collect();
    if (last.newGeneration !== undefined) return last;
    // Everything must be read before the checkpoint lets the WAL restart over it.
    if (collector.behind) return null;
    const idle = idleReader(c);
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
        schedule.onSlotZeroSince = Date.now();
        schedule.escapeFast = true;
        p.logger.log("INFO", "checkpointed", { ...p.fields, frames: result.log });
      }
    } finally {
      beginRead(c.readers[c.active]);
    }
  } finally {
    if (c.lock.isOpen && c.lock.isTransaction) c.lock.exec("ROLLBACK");
  }
  await uploader.flush();
  return null;
}
