/**
 * The long-running service behind `walsync watch`: one watcher per database and replica,
 * each on its own schedule, plus retention, restore drills and the metrics endpoint. A
 * replica that fails never holds the others up.
 * @module
 */
import { openBucket } from "../storage/bucket.ts";
import { WalsyncError } from "../support/errors.ts";
import type { DatabaseConfig, ReplicaConfig, WalsyncConfig } from "./config.ts";
import type { DrillResult } from "../ops/drill.ts";
import { type SigningKey, signingKeyFrom } from "../history/sign.ts";
import { type Logger, withFields } from "../support/log.ts";
import { type Metric, type MetricsServer, serveMetrics } from "../support/metrics.ts";
import { setRetryLogger } from "../storage/transfer/retry.ts";
import type { Storage } from "../storage/storage.ts";
import { createHistoryWriter, type HistoryWriter } from "../history/writer.ts";
import { createLimiter, createWatcher, type DatabaseWatcher } from "../watch/mod.ts";

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

/** What a running service holds: its pieces add to it, and the end releases it. */
interface Service {
  config: WalsyncConfig;
  logger: Logger;
  /** Aborted on the caller's signal or once no watcher is left running. */
  signal: AbortSignal;
  takeover?: boolean;
  limiter: ReturnType<typeof createLimiter>;
  jobs: Job[];
  /** Storages by their replica settings (see `sharedStorage`). */
  storages: Map<string, Storage>;
  /** Leases taken so far, released if a later one refuses the start. */
  held: HistoryWriter[];
  /** One sync loop per watcher. */
  loops: Promise<void>[];
  /** Retention and drills: stopped only after the watchers have shipped what is pending. */
  background: Promise<void>[];
  metrics?: MetricsServer;
}

/**
 * Runs every watcher of `config` until `signal` aborts; ships what is pending before returning.
 * Returns false when some commits could not be shipped at the end (they stay in the WAL, and
 * the next start takes them into its snapshot).
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * Deno.addSignalListener("SIGTERM", () => stop.abort());
 * const complete = await runService(await loadConfig("walsync.yml"), stderrLogger(false), stop.signal);
 * ```
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
  // Retry lines come from the transfer layer: they go through this logger (--json-logs).
  setRetryLogger(logger);
  const service: Service = {
    config,
    logger,
    signal: everything.signal,
    takeover: options.takeover,
    limiter: createLimiter(config.maxConcurrentUploads),
    jobs: [],
    storages: new Map(),
    held: [],
    loops: [],
    background: [],
  };
  // First, so that a bad address fails the start before any watcher takes a snapshot.
  if (config.metricsAddr) {
    service.metrics = serveMetrics(config.metricsAddr, () => collect(service.jobs));
  }
  for (const db of config.databases) {
    for (const replica of db.replicas) await startJob(service, db, replica);
  }
  logger.log("INFO", "watching", {
    databases: config.databases.length,
    replicas: service.jobs.length,
    metrics: service.metrics ? `${config.metricsAddr} (port ${service.metrics.port})` : "off",
  });
  await Promise.all(service.loops);
  everything.abort();
  return await stopService(service);
}

/** Starts shipping `db` to `replica`: its lease, its watcher, its sync loop, retention, drills. */
async function startJob(service: Service, db: DatabaseConfig, replica: ReplicaConfig) {
  const { config, signal } = service;
  const storage = await sharedStorage(service.storages, replica);
  const log = withFields(
    service.logger,
    config.databases.some((d) => d.replicas.length > 1) ? { replica: storage.location } : {},
  );
  const history = await takeLease(service, storage, db.name, log);
  service.held.push(history);
  const watcher = createWatcher(db.path, storage, service.limiter, {
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
  service.jobs.push(job);
  service.loops.push(syncLoop(watcher, db.syncIntervalMs, signal));
  // Retention and drills load their code only when configured (restore, for drills, is
  // not otherwise needed by a watching process).
  const signing = signingKeyFrom(config.signingKey);
  if (db.retentionMs > 0) {
    service.background.push(retentionLoop(job, db, history, signing, log, signal));
  }
  if (db.drillIntervalMs > 0) {
    service.background.push(drillLoop(job, db, signing, log, signal));
  }
}

/**
 * The storage of `replica`. Databases with the same replica settings share one storage, so
 * one S3 client (and its connection pool) serves them all.
 */
async function sharedStorage(
  storages: Map<string, Storage>,
  replica: ReplicaConfig,
): Promise<Storage> {
  const storageKey = JSON.stringify([replica.bucket, replica.s3]);
  let storage = storages.get(storageKey);
  if (!storage) {
    storage = await openBucket(replica.bucket, replica.s3);
    storages.set(storageKey, storage);
  }
  return storage;
}

/**
 * The history writer of `db` in `storage`, its lease taken when it can be. One writer per
 * database and destination: a second watch refuses here, naming the holder, and what was
 * started so far is released.
 */
async function takeLease(
  service: Service,
  storage: Storage,
  db: string,
  log: Logger,
): Promise<HistoryWriter> {
  const history = createHistoryWriter(storage, db, {
    logger: log,
    takeover: service.takeover,
    signing: signingKeyFrom(service.config.signingKey),
  });
  try {
    await history.acquire();
  } catch (err) {
    // Storage trouble is retried by the watcher (it takes the lease before its first
    // snapshot); a lease held by another process refuses the start.
    if (!(err instanceof WalsyncError && err.kind === "storage")) {
      await Promise.all(service.held.map((h) => h.release()));
      await service.metrics?.close();
      for (const s of service.storages.values()) s.close();
      throw err;
    }
    log.log("ERROR", "could not take the lease yet; will retry", { db, error: err.message });
  }
  return history;
}

/** Ticks `watcher` every sync interval (sooner when it asks) until stopped or its lease is lost. */
async function syncLoop(
  watcher: DatabaseWatcher,
  syncIntervalMs: number,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    const started = Date.now();
    const soon = await watcher.tick();
    if (watcher.status().running === false) return; // lease lost: stopped for good
    const wait = Math.max(0, syncIntervalMs - (Date.now() - started));
    await sleep(soon > 0 ? Math.min(soon, wait) : wait, signal);
  }
}

/** Deletes generations older than the database's restore window, every `retentionEveryMs`. */
async function retentionLoop(
  job: Job,
  db: DatabaseConfig,
  history: HistoryWriter,
  signing: SigningKey | undefined,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const { applyRetention } = await import("../ops/retention.ts");
  await sleep(Math.min(retentionEveryMs, Math.max(db.syncIntervalMs * 5, 5_000)), signal);
  while (!signal.aborted && job.watcher.status().running !== false) {
    try {
      const result = await applyRetention(
        job.storage,
        db.name,
        db.retentionMs,
        Date.now(),
        history,
        signing,
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
}

/** Runs a restore drill every drill interval, counting failures on `job` for the metrics. */
async function drillLoop(
  job: Job,
  db: DatabaseConfig,
  signing: SigningKey | undefined,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const { runDrill } = await import("../ops/drill.ts");
  await sleep(db.drillIntervalMs, signal);
  while (!signal.aborted && job.watcher.status().running !== false) {
    const result = await runDrill(job.storage, db.name, signing);
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
}

/**
 * Ships what is pending, then stops retention, drills and metrics and closes the storages.
 * Whether everything was shipped and no database lost its lease.
 */
async function stopService(service: Service): Promise<boolean> {
  const { config, jobs, logger } = service;
  // Pending commits first: a drill or retention pass still running must not use up the time
  // a service manager gives us before it kills the process.
  const shipped = await Promise.all(jobs.map((j) => j.watcher.close()));
  await Promise.all(service.background);
  await service.metrics?.close();
  for (const storage of service.storages.values()) storage.close();
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
