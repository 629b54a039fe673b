/**
 * Starting a generation: a snapshot of the database at an exactly known WAL position, so
 * that the segments after it continue it frame for frame.
 * @module
 */
import { WalsyncError } from "../support/errors.ts";
import type { HistoryWriter } from "../history/writer.ts";
import { meta, newGenerationId, snapshotKey } from "../format/layout.ts";
import type { LogFields, Logger } from "../support/log.ts";
import { putSourceObject, type WrittenObject } from "../storage/object.ts";
import { pinnedImage } from "../format/snapshot_image.ts";
import type { Storage } from "../storage/storage.ts";
import { beginRead } from "../format/database.ts";
import {
  indexDescribes,
  parseWalHeader,
  walFrameHeaderSize,
  type WalHeader,
  walHeaderSize,
  type WalIndexHeader,
  type WalPosition,
  walStartPosition,
} from "../format/wal.ts";
import {
  closeConnections,
  type Connections,
  openConnections,
  takeWriteLock,
} from "./connections.ts";
import type { Lineage } from "./lineage.ts";
import { createLimiter, type Limiter, withProcessLock } from "./locks.ts";
import { stampOf } from "./stamp.ts";
import { asStorage } from "./uploader.ts";

/** First snapshots of many databases are taken a few at a time, not all at once. */
const snapshotSlots = createLimiter(2);

/** What a generation needs to know about its database. */
export interface GenerationTarget {
  /** Database path (absolute). */
  dbPath: string;
  /** Its `-wal` file. */
  walPath: string;
  /** Name in the bucket. */
  name: string;
  /** The history this generation continues (lease, txids, head). */
  history: HistoryWriter;
  /** Where the snapshot goes. */
  storage: Storage;
  /** Upload slots shared by every database. */
  limiter: Limiter;
  /** Where events go. */
  logger: Logger;
  /** Fields every log line of this database carries. */
  fields: LogFields;
}

/** A generation just started. */
export interface StartedGeneration {
  /** Fresh connections, reader 0 holding the read transaction the snapshot was copied in. */
  conns: Connections;
  /** The lineage, at the WAL position of the snapshot. */
  lineage: Lineage;
  /** The snapshot object. */
  written: WrittenObject;
}

/**
 * Opens fresh connections and starts a new generation: a snapshot at an exactly known WAL
 * position. Never below `minTxid` (segments of the previous generation may still be on
 * their way; a listing can lag). The connections are closed again on failure.
 */
export function startGeneration(
  target: GenerationTarget,
  minTxid: number,
): Promise<StartedGeneration> {
  return snapshotSlots.run(async () => {
    const conns = await openConnections(target.dbPath, target.logger, target.fields);
    try {
      return await takeSnapshot(target, conns, minTxid);
    } catch (err) {
      closeConnections(conns);
      throw err;
    }
  });
}

/**
 * The WAL position of everything SQLite has published as committed, from the wal-index
 * header: after frame `mxFrame`, with the checksum chain SQLite itself continues from.
 * Reads only the `-wal` file's header, whatever the WAL's size.
 */
async function committedPoint(
  walPath: string,
  committed: WalIndexHeader,
): Promise<{ header: WalHeader | null; position: WalPosition | null }> {
  let bytes: Uint8Array;
  try {
    const file = await Deno.open(walPath, { read: true });
    try {
      bytes = new Uint8Array(walHeaderSize);
      let filled = 0;
      while (filled < bytes.byteLength) {
        const n = await file.read(bytes.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      if (filled < walHeaderSize) return { header: null, position: null };
    } finally {
      file.close();
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { header: null, position: null };
    throw err;
  }
  const header = parseWalHeader(bytes);
  // A wal-index of another WAL (restarted by a checkpoint, its header not rewritten yet)
  // publishes nothing of this one: the snapshot holds all of it.
  if (!indexDescribes(committed, header) || committed.mxFrame === 0) {
    return { header, position: walStartPosition(header) };
  }
  return {
    header,
    position: {
      offset: walHeaderSize + committed.mxFrame * (walFrameHeaderSize + header.pageSize),
      checksum1: committed.frameChecksum[0],
      checksum2: committed.frameChecksum[1],
    },
  };
}

/** Under the write lock: begins reader 0's transaction and finds the WAL position it sees. */
async function pinSnapshotPoint(target: GenerationTarget, c: Connections) {
  // Under the write lock nothing commits, so the reader's snapshot and the end of the
  // WAL's committed frames are the same point.
  return await withProcessLock(target.dbPath, async () => {
    if (!(await takeWriteLock(c, 100))) {
      throw new WalsyncError(
        "database",
        `database ${target.name} stayed locked by a writer for seconds; will retry`,
      );
    }
    try {
      beginRead(c.readers[0]);
      c.active = 0;
      const walInode = (await stampOf(target.walPath))?.ino ?? null;
      // Nobody writes under our write lock, so the published header holds still.
      const committed = c.index.read();
      if (committed === null) {
        throw new WalsyncError(
          "database",
          `the wal-index header of ${target.name} (in its -shm) could not be read; will retry`,
        );
      }
      // Read after the transaction began; nothing restarts the WAL under the write lock.
      const backfilled = c.index.backfilled() ?? 0;
      return {
        walInode,
        committed,
        backfilled,
        ...(await committedPoint(target.walPath, committed)),
      };
    } finally {
      c.lock.exec("ROLLBACK");
    }
  });
}

async function takeSnapshot(
  target: GenerationTarget,
  c: Connections,
  minTxid: number,
): Promise<StartedGeneration> {
  const pinned = await pinSnapshotPoint(target, c);
  const { walInode, header, position } = pinned;
  const generation = newGenerationId();
  const { name, storage } = target;
  // The image is read in place inside reader 0's open transaction: the state at the lock
  // above, with no temporary copy (format/snapshot_image.ts).
  const image = await pinnedImage({
    readDatabase: c.file.readAt,
    walPath: target.walPath,
    index: pinned.committed,
    backfilled: pinned.backfilled,
    reader: c.readers[0],
  });
  try {
    // History hook: the txid follows the head (never below one this process used), and
    // the snapshot links to the object the head named.
    const start = await asStorage(() => target.history.startGeneration(minTxid));
    const txid = start.txid;
    const key = snapshotKey(name, generation, txid);
    const written = await target.limiter.run(() =>
      asStorage(() =>
        putSourceObject(storage, key, image, {
          ...start.metadata,
          [meta.kind]: "snapshot",
          [meta.db]: name,
          [meta.generation]: generation,
          [meta.txid]: String(txid),
          [meta.created]: new Date().toISOString(),
          [meta.pageSize]: String(image.pageSize),
          [meta.pageCount]: String(image.pageCount),
        }, { finishMetadata: (metadata) => target.history.sign(key, metadata) })
      )
    );
    await target.history.advance({ txid, key, sha256: written.sha256 }); // history hook
    const lineage: Lineage = {
      generation,
      pageSize: image.pageSize,
      header,
      position,
      txid,
      prevSha256: written.sha256,
      startedAt: Date.now(),
      walInode,
      checkpointedAt: -1,
    };
    return { conns: c, lineage, written };
  } finally {
    image.close();
  }
}
