/**
 * `walsync watch`: ships every commit of live databases continuously until SIGTERM or
 * SIGINT, configured by its arguments and flags or by a walsync.yml.
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { parseBucket } from "../../bucket.ts";
import type { DatabaseConfig, WalsyncConfig } from "../../config.ts";
import { ExitCode, usageError } from "../../errors.ts";
import { type Logger, stderrLogger } from "../../log.ts";
import { watchDefaults } from "../../watch.ts";
import {
  addBucketOptions,
  bucketArg,
  type BucketOptions,
  dbName,
  parseDuration,
  type SetExit,
  storageFrom,
} from "../options.ts";

/** Flags of `walsync watch`. */
interface WatchFlags extends BucketOptions {
  config?: string;
  syncInterval: string;
  snapshotInterval: string;
  retention: string;
  drillInterval: string;
  metricsAddr?: string;
  checkpointSize: string;
  maxUploads: string;
  jsonLogs?: boolean;
  takeover?: boolean;
}

/** Registers `watch` on `program`. */
export function registerWatch(program: Command, setExit: SetExit): void {
  addBucketOptions(
    program.command("watch")
      .argument("[db...]", "one or more SQLite databases to back up continuously (or use --config)")
      .description("continuously ship every commit of live databases until SIGTERM or SIGINT")
      .option("-c, --config <file>", "read databases, replicas and settings from a walsync.yml")
      .option("--sync-interval <duration>", "how often new commits are shipped", "1s")
      .option(
        "--snapshot-interval <duration>",
        "how often a fresh full snapshot is taken (0 = never)",
        "24h",
      )
      .option(
        "--retention <duration>",
        "keep what restores any point of this window, delete older generations (0 = keep all)",
        "0",
      )
      .option("--drill-interval <duration>", "run a restore drill this often (0 = never)", "0")
      .option(
        "--metrics-addr <host:port>",
        "serve Prometheus metrics at /metrics (off by default; host defaults to 127.0.0.1)",
      )
      .option(
        "--checkpoint-size <bytes>",
        "checkpoint the WAL once it grows past this many bytes",
        String(watchDefaults.checkpointBytes),
      )
      .option(
        "--max-uploads <n>",
        "uploads in flight at once across all databases",
        String(watchDefaults.maxConcurrentUploads),
      )
      .option("--json-logs", "log one JSON object per line on stderr")
      .option("--takeover", "take each history's lease even when another process holds it")
      .addHelpText(
        "after",
        `
Runs in the foreground (for systemd, a container or a terminal); one log line per event on stderr.
On SIGTERM or SIGINT it ships what is pending and exits 0.
Examples:
  walsync watch /var/lib/app/app.db --bucket s3://backups/app
  walsync watch a.db b.db c.db -b file:///srv/backups --sync-interval 500ms --json-logs
  walsync watch --config /etc/walsync.yml`,
      ),
  ).action(async (paths: string[], options: WatchFlags, command: Command) => {
    const config = await watchConfig(
      paths,
      options,
      (key) => command.getOptionValueSource(key) === "cli",
    );
    const { runService } = await import("../../service.ts");
    const logger = stderrLogger(options.jsonLogs ?? false);
    await untilStopped(logger, async (signal) => {
      // Exit 1 when the last commits could not be shipped, so a service manager can tell.
      const service = { takeover: options.takeover };
      if (!(await runService(config, logger, signal, service))) setExit(ExitCode.failure);
    });
  });
}

/**
 * Runs `work` with a signal that SIGTERM or SIGINT aborts. Once stopping, pending uploads
 * get 10 s before the process exits 1: shipping them must not hold a service manager up.
 */
async function untilStopped(
  logger: Logger,
  work: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const controller = new AbortController();
  const stop = (signal: string) => () => {
    if (controller.signal.aborted) return;
    logger.log("INFO", "stopping: shipping what is pending", { signal });
    controller.abort();
    const timer = setTimeout(() => {
      logger.log("ERROR", "pending uploads did not finish within 10 s; exiting");
      Deno.exit(1);
    }, 10_000);
    Deno.unrefTimer(timer);
  };
  const onTerm = stop("SIGTERM");
  const onInt = stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  try {
    await work(controller.signal);
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
  }
}

/** The configuration `watch` runs: from --config, or from its arguments and flags. */
async function watchConfig(
  paths: string[],
  options: WatchFlags,
  fromCli: (option: string) => boolean,
): Promise<WalsyncConfig> {
  if (options.config !== undefined) {
    if (paths.length > 0 || options.bucket !== undefined) {
      throw usageError(
        "give databases and --bucket either on the command line or in --config, not both",
      );
    }
    // A flag that the config file would silently override is a mistake worth stopping for.
    const settings: [keyof WatchFlags, string][] = [
      ["syncInterval", "--sync-interval"],
      ["snapshotInterval", "--snapshot-interval"],
      ["retention", "--retention"],
      ["drillInterval", "--drill-interval"],
      ["checkpointSize", "--checkpoint-size"],
      ["maxUploads", "--max-uploads"],
      ["endpoint", "--endpoint"],
      ["region", "--region"],
    ];
    for (const [key, flag] of settings) {
      if (fromCli(key)) {
        throw usageError(
          `${flag} has no effect with --config; set it in ${options.config} instead`,
        );
      }
    }
    const { loadConfig } = await import("../../config.ts");
    const config = await loadConfig(options.config);
    if (options.metricsAddr !== undefined) config.metricsAddr = options.metricsAddr;
    return config;
  }
  if (paths.length === 0) {
    throw usageError("watch needs at least one database path (or --config walsync.yml)");
  }
  const bucket = bucketArg(options);
  parseBucket(bucket);
  const syncIntervalMs = parseDuration("--sync-interval", options.syncInterval);
  if (syncIntervalMs < 10) throw usageError("--sync-interval must be at least 10ms");
  const checkpointBytes = Number(options.checkpointSize);
  if (!Number.isSafeInteger(checkpointBytes) || checkpointBytes < 4096) {
    throw usageError(
      `--checkpoint-size ${options.checkpointSize} must be a byte count of at least 4096`,
    );
  }
  const maxConcurrentUploads = Number(options.maxUploads);
  if (!Number.isSafeInteger(maxConcurrentUploads) || maxConcurrentUploads < 1) {
    throw usageError(`--max-uploads ${options.maxUploads} must be a whole number of at least 1`);
  }
  const names = new Map<string, string>();
  const databases = paths.map((path): DatabaseConfig => {
    const name = dbName(path);
    const other = names.get(name);
    if (other !== undefined) {
      throw usageError(
        `${other} and ${path} have the same name ${name} in the bucket; use a config file with name: for one of them`,
      );
    }
    names.set(name, path);
    return {
      path: resolve(path),
      name,
      syncIntervalMs,
      snapshotIntervalMs: parseDuration("--snapshot-interval", options.snapshotInterval),
      checkpointBytes,
      retentionMs: parseDuration("--retention", options.retention),
      drillIntervalMs: parseDuration("--drill-interval", options.drillInterval),
      replicas: [{ bucket, s3: { endpoint: options.endpoint, region: options.region } }],
    };
  });
  // The bucket is checked once up front so that a typo fails at start, not in the logs.
  const storage = await storageFrom(options);
  storage.close();
  return {
    file: "(command line)",
    metricsAddr: options.metricsAddr,
    maxConcurrentUploads,
    databases,
  };
}
