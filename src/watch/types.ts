/**
 * The public shapes of a watcher: its settings, what it reports, and the handle the service
 * drives.
 * @module
 */
import type { HistoryWriter } from "../history/writer.ts";
import type { Logger } from "../support/log.ts";
import { settingDefaults } from "../support/settings.ts";

/** Settings for one watcher (`createWatcher`). */
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

const defaults = settingDefaults();

/** Defaults for {@link WatchOptions}: those of the settings table (`src/support/settings.ts`). */
export const watchDefaults: Readonly<
  Pick<
    WatchOptions,
    "syncIntervalMs" | "snapshotIntervalMs" | "checkpointBytes" | "maxConcurrentUploads"
  >
> = {
  syncIntervalMs: defaults.syncIntervalMs,
  snapshotIntervalMs: defaults.snapshotIntervalMs,
  checkpointBytes: defaults.checkpointBytes,
  maxConcurrentUploads: defaults.maxConcurrentUploads,
};

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
  /** False once the watcher has stopped for good (its lease was taken over). */
  running?: boolean;
  /** Why it stopped, one line. */
  stopped?: string;
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
