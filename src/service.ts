/**
 * The long-running service behind `walsync watch`: one watcher per database and replica,
 * each on its own schedule, plus retention, restore drills and the metrics endpoint. A
 * replica that fails never holds the others up.
 * @module
 */
import { openBucket } from "./bucket.ts";
import { WalsyncError } from "./errors.ts";
import type { WalsyncConfig } from "./config.ts";
import type { DrillResult } from "./drill.ts";
import { signingKeyFrom } from "./history/sign.ts";
import { type Logger, withFields } from "./log.ts";
import { type Metric, serveMetrics } from "./metrics.ts";
import { setRetryLogger } from "./transfer/retry.ts";
import type { Storage } from "./storage.ts";
import { createHistoryWriter, type HistoryWriter } from "./history/writer.ts";
import { createLimiter, createWatcher, type DatabaseWatcher } from "./watch.ts";

/** How often retention runs for each database and replica. */
const retentionEveryMs = 3_600_000;

interface Job {
  db: string;
  replica: string;
  storage: Storage;
  watcher: DatabaseWatcher;
  drill?: DrillResult;
  drillFailures: number;
  checksumFailures: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Collects the metric families for every job. */
function collect(jobs: Job[]): Metric[] {
  const labels = (j: Job) => ({ db: j.db, replica: j.replica });
  const family = (
    name: string,
    type: "gauge" | "counter",
    help: string,
    value: (j: Job) => number,
  ): Metric => ({
    name,
    type,
    help,
    samples: jobs.map((j) => ({ labels: labels(j), value: value(j) })),
  });
  return [
    family(
      "walsync_replication_lag_seconds",
      "gauge",
      "Age in seconds of the oldest commit not yet durable in this replica (0 when caught up).",
      (j) => j.watcher.status().lagSeconds,
    ),
    family(
      "walsync_bytes_uploaded_total",
      "counter",
      "Bytes uploaded since start.",
      (j) => j.watcher.status().bytesUploaded,
    ),
    family(
      "walsync_objects_uploaded_total",
      "counter",
      "Objects uploaded since start.",
      (j) => j.watcher.status().objectsUploaded,
    ),
    family(
      "walsync_sync_errors_total",
      "counter",
      "Failed sync attempts since start.",
      (j) => j.watcher.status().syncErrors,
    ),
    family(
      "walsync_checksum_failures_total",
      "counter",
      "Checksum or chain failures found by restore drills.",
      (j) => j.checksumFailures,
    ),
    family(
      "walsync_last_sync_timestamp_seconds",
      "gauge",
      "Unix time of the last successful sync.",
      (j) => j.watcher.status().lastSyncAt / 1000,
    ),
    family(
      "walsync_watcher_running",
      "gauge",
      "1 while this database is being shipped to this replica, 0 once stopped (its lease was taken over).",
      (j) => (j.watcher.status().running === false ? 0 : 1),
    ),
    family("walsync_txid", "gauge", "Last txid shipped.", (j) => j.watcher.status().txid ?? -1),
    family(
      "walsync_drill_success",
      "gauge",
      "1 when the last restore drill passed, 0 when it failed, -1 before the first.",
      (j) => (j.drill ? (j.drill.ok ? 1 : 0) : -1),
    ),
    family(
      "walsync_drill_failures_total",
      "counter",
      "Restore drills that failed.",
      (j) => j.drillFailures,
    ),
    {
      name: "process_resident_memory_bytes",
      type: "gauge",
      help: "Resident memory of the walsync process.",
      samples: [{ labels: {}, value: Deno.memoryUsage().rss }],
    },
  ];
}

/**
 * Runs every watcher of `config` until `signal` aborts; ships what is pending before returning.
 * Returns false when some commits could not be shipped at the end (they stay in the WAL, and
 * the next start takes them into its snapshot).
 */
export async function runService(
  config: WalsyncConfig,
  logger: Logger,
  signal: AbortSignal,
  options: { takeover?: boolean } = {},
): Promise<boolean> {
  // Everything stops on the caller's signal, or once no watcher is left running (each lost
  // its lease to another process): then drills and retention have nothing left to serve.
  const everything = new AbortController();
  if (signal.aborted) everything.abort();
  else signal.addEventListener("abort", () => everything.abort(), { once: true });
  signal = everything.signal;
  // Retry lines come from the transfer layer: they go through this logger (--json-logs).
  setRetryLogger(logger);
  const held: HistoryWriter[] = [];
  const limiter = createLimiter(config.maxConcurrentUploads);
  const jobs: Job[] = [];
  const storages = new Map<string, Storage>();
  /** One sync loop per watcher. */
  const loops: Promise<void>[] = [];
  /** Retention and drills: stopped only after the watchers have shipped what is pending. */
  const background: Promise<void>[] = [];
  // First, so that a bad address fails the start before any watcher takes a snapshot.
  const metrics = config.metricsAddr
    ? serveMetrics(config.metricsAddr, () => collect(jobs))
    : undefined;
  for (const db of config.databases) {
    for (const replica of db.replicas) {
      // Databases with the same replica settings share one storage, so one S3 client (and
      // its connection pool) serves them all.
      const storageKey = JSON.stringify([replica.bucket, replica.s3]);
      let storage = storages.get(storageKey);
      if (!storage) {
        storage = await openBucket(replica.bucket, replica.s3);
        storages.set(storageKey, storage);
      }
      const log = withFields(
        logger,
        config.databases.some((d) => d.replicas.length > 1) ? { replica: storage.location } : {},
      );
      // One writer per database and destination: a second watch refuses here, naming the holder.
      const history = createHistoryWriter(storage, db.name, {
        logger: log,
        takeover: options.takeover,
        signing: signingKeyFrom(config.signingKey),
      });
      try {
        await history.acquire();
      } catch (err) {
        // Storage trouble is retried by the watcher (it takes the lease before its first
        // snapshot); a lease held by another process refuses the start.
        if (err instanceof WalsyncError && err.kind === "storage") {
          log.log("ERROR", "could not take the lease yet; will retry", {
            db: db.name,
            error: err.message,
          });
        } else {
          await Promise.all(held.map((h) => h.release()));
          await metrics?.close();
          for (const s of storages.values()) s.close();
          throw err;
        }
      }
      held.push(history);
      const watcher = createWatcher(db.path, storage, limiter, {
        history,
        syncIntervalMs: db.syncIntervalMs,
        snapshotIntervalMs: db.snapshotIntervalMs,
        checkpointBytes: db.checkpointBytes,
        maxConcurrentUploads: config.maxConcurrentUploads,
        logger: log,
      }, db.name);
      const job: Job = {
        db: db.name,
        replica: storage.location,
        storage,
        watcher,
        drillFailures: 0,
        checksumFailures: 0,
      };
      jobs.push(job);

      loops.push((async () => {
        while (!signal.aborted) {
          const started = Date.now();
          const soon = await watcher.tick();
          if (watcher.status().running === false) return; // lease lost: stopped for good
          const wait = Math.max(0, db.syncIntervalMs - (Date.now() - started));
          await sleep(soon > 0 ? Math.min(soon, wait) : wait, signal);
        }
      })());

      // Retention and drills load their code only when configured (restore, for drills, is
      // not otherwise needed by a watching process).
      if (db.retentionMs > 0) {
        background.push((async () => {
          const { applyRetention } = await import("./retention.ts");
          await sleep(Math.min(retentionEveryMs, Math.max(db.syncIntervalMs * 5, 5_000)), signal);
          while (!signal.aborted && watcher.status().running !== false) {
            try {
              const result = await applyRetention(
                storage,
                db.name,
                db.retentionMs,
                Date.now(),
                history,
                signingKeyFrom(config.signingKey),
              );
              if (result.skipped) {
                log.log("WARN", "retention skipped", { db: db.name, reason: result.skipped });
              } else if (result.generations > 0) {
                log.log("INFO", "retention deleted old generations", {
                  db: db.name,
                  generations: result.generations,
                  objects: result.objects,
                });
              }
            } catch (err) {
              log.log("ERROR", "retention failed", {
                db: db.name,
                error: err instanceof Error ? err.message : String(err),
              });
            }
            await sleep(retentionEveryMs, signal);
          }
        })());
      }

      if (db.drillIntervalMs > 0) {
        background.push((async () => {
          const { runDrill } = await import("./drill.ts");
          await sleep(db.drillIntervalMs, signal);
          while (!signal.aborted && watcher.status().running !== false) {
            const result = await runDrill(storage, db.name, signingKeyFrom(config.signingKey));
            job.drill = result;
            if (result.ok) {
              log.log("INFO", "restore drill passed", {
                db: db.name,
                txid: result.txid,
                objects: result.objects,
                duration_ms: result.durationMs,
              });
            } else {
              job.drillFailures++;
              if (result.kind === "integrity") job.checksumFailures++;
              log.log("ERROR", "restore drill failed", {
                db: db.name,
                error: result.error,
                duration_ms: result.durationMs,
              });
            }
            await sleep(db.drillIntervalMs, signal);
          }
        })());
      }
    }
  }
  logger.log("INFO", "watching", {
    databases: config.databases.length,
    replicas: jobs.length,
    metrics: metrics ? `${config.metricsAddr} (port ${metrics.port})` : "off",
  });
  await Promise.all(loops);
  everything.abort();
  // Pending commits first: a drill or retention pass still running must not use up the time
  // a service manager gives us before it kills the process.
  const shipped = await Promise.all(jobs.map((j) => j.watcher.close()));
  await Promise.all(background);
  await metrics?.close();
  for (const storage of storages.values()) storage.close();
  const complete = shipped.every(Boolean);
  // A lost lease was named in its own ERROR line; the end only counts them.
  const lost = jobs.filter((j) => j.watcher.status().running === false).length;
  if (lost > 0) {
    logger.log("WARN", "stopped; some databases lost their lease to another process", {
      databases: config.databases.length,
      lost,
    });
  } else {
    logger.log(
      complete ? "INFO" : "ERROR",
      complete ? "stopped" : "stopped with commits not shipped",
      { databases: config.databases.length },
    );
  }
  return complete && lost === 0;
}
