/**
 * The `walsync` command line: parses arguments with commander, runs one command, prints text
 * or one JSON document, and returns the exit code. Everything printed passes through `redact`.
 * @module
 */
import { basename, resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { bucketForms, openBucket, parseBucket } from "./bucket.ts";
import { ExitCode, usageError, WalsyncError } from "./errors.ts";
import { formatBytes, progress } from "./progress.ts";
import { invalidNameMessage, isValidDbName } from "./layout.ts";
import { redact } from "./redact.ts";
import type { RestoreResult, RestoreTarget } from "./restore.ts";
import type { Storage } from "./storage.ts";
import { stderrLogger } from "./log.ts";
import { watchDefaults } from "./watch.ts";
import type { DatabaseConfig, WalsyncConfig } from "./config.ts";
import type { SigningKey } from "./history/sign.ts";
import { durationMs, formatDuration } from "./duration.ts";
// Each command's implementation is imported when that command runs (`await import(…)`), so
// a long-running `watch` does not keep restore, verify, the YAML parser and the rest loaded
// (about 8 MiB of resident memory; docs/benchmarks-watch.md).

/** Version printed by `walsync --version`. */
export const version = "0.1.0";

/** Options every command that touches a bucket takes. */
interface BucketOptions {
  bucket?: string;
  endpoint?: string;
  region?: string;
  json?: boolean;
}

const encoder = new TextEncoder();

function out(text: string): void {
  Deno.stdout.writeSync(encoder.encode(redact(text) + "\n"));
}

function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(redact(text) + "\n"));
}

function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** The text a successful restore prints. */
function printRestored(result: RestoreResult, replica?: string): void {
  const from = replica ? ` from ${replica}` : "";
  out(
    `✓ Checksum verified: ${result.snapshot.sha256.slice(0, 12)}… (${
      1 + result.segments.length
    } objects, ${formatBytes(result.bytes)})${from}`,
  );
  out(`✓ integrity_check: ${result.integrityCheck}`);
  out(historyLine({
    format: result.format ?? 2,
    signed: result.signed ?? false,
    signatureChecked: result.signatureChecked ?? false,
  }));
  out(
    `Restored ${result.db} at txid ${result.txid} to ${result.output} (${
      formatBytes(result.size)
    })`,
  );
}

function addBucketOptions(command: Command): Command {
  return command
    .option("-b, --bucket <bucket>", `where backups live: ${bucketForms} (env WALSYNC_BUCKET)`)
    .option("--endpoint <url>", "S3 endpoint for MinIO, R2, Tigris, B2 (env AWS_ENDPOINT_URL_S3)")
    .option("--region <region>", "S3 region (env AWS_REGION, default us-east-1)")
    .option("--json", "print one JSON document instead of text");
}

async function storageFrom(options: BucketOptions): Promise<Storage> {
  const bucket = options.bucket ?? Deno.env.get("WALSYNC_BUCKET");
  if (!bucket) throw usageError(`--bucket is required; give ${bucketForms}`);
  const storage = await openBucket(bucket, { endpoint: options.endpoint, region: options.region });
  await storage.check();
  return storage;
}

/**
 * A database name given as a name (`restore <db>`, `--name`): the one check every way a name
 * enters goes through (config files use the same `isValidDbName`).
 */
function nameArg(name: string): string {
  if (!isValidDbName(name)) throw usageError(invalidNameMessage(name));
  return name;
}

function dbName(path: string): string {
  const name = basename(path);
  if (!name || name === "." || name === "..") {
    throw usageError(`${path} is not a database file name`);
  }
  return name;
}

/** One line on how a backup's history is anchored and whether it is signed. */
function historyLine(
  h: { format: 2 | 3; signed: boolean; signatureChecked: boolean; unreached?: string[] },
): string {
  const anchor = h.format === 3 ? "history anchored by its head" : "format 2 bucket (no head)";
  const signed = h.signed
    ? h.signatureChecked ? "signed, signatures checked" : "signed, not checked (no key)"
    : h.signatureChecked
    ? "signatures checked"
    : "not signed";
  const extra = h.unreached?.length
    ? `; ${h.unreached.length} object(s) not reached from the head (not used): ${
      h.unreached.slice(0, 3).join(", ")
    }${h.unreached.length > 3 ? ", …" : ""}`
    : "";
  return `  ${anchor}, ${signed}${extra}`;
}

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
    const { loadConfig } = await import("./config.ts");
    const config = await loadConfig(options.config);
    if (options.metricsAddr !== undefined) config.metricsAddr = options.metricsAddr;
    return config;
  }
  if (paths.length === 0) {
    throw usageError("watch needs at least one database path (or --config walsync.yml)");
  }
  const bucket = options.bucket ?? Deno.env.get("WALSYNC_BUCKET");
  if (!bucket) throw usageError(`--bucket is required; give ${bucketForms}`);
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

/** Parses a duration such as `1s`, `500ms`, `10m`, `24h` (a bare number is seconds) into milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const ms = durationMs(text);
  if (ms === null) {
    throw usageError(`${flag} ${text} is not a duration; give e.g. 500ms, 1s, 10m or 24h`);
  }
  return ms;
}

/** Parses `--txid` / `--timestamp` into a restore target; throws usage errors for bad values. */
export function parseTarget(options: { txid?: string; timestamp?: string }): RestoreTarget {
  if (options.txid !== undefined && options.timestamp !== undefined) {
    throw usageError("give either --txid or --timestamp, not both");
  }
  if (options.txid !== undefined) {
    if (!/^\d+$/.test(options.txid) || !Number.isSafeInteger(Number(options.txid))) {
      throw usageError(`--txid ${options.txid} is not a whole number; give e.g. --txid 42`);
    }
    return { txid: Number(options.txid) };
  }
  if (options.timestamp !== undefined) {
    const text = options.timestamp;
    const date = new Date(text);
    if (
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ||
      isNaN(date.getTime())
    ) {
      throw usageError(
        `--timestamp ${text} is not an RFC 3339 time; give e.g. --timestamp 2026-11-24T10:00:00Z`,
      );
    }
    return { timestamp: date };
  }
  return {};
}

function byteProgress(label: string, json: boolean | undefined) {
  const bar = progress(label, 0, false);
  return {
    onBytes: (done: number, total: number) => {
      if (json && !Deno.stderr.isTerminal()) return;
      bar.setTotal(total);
      bar.update(done);
    },
    done: () => bar.done(),
  };
}

/** One replica's verify: its JSON document (without `command`) and whether it passed. */
interface VerifyOutcome {
  ok: boolean;
  document: Record<string, unknown>;
}

/** Verifies `name` in one storage, printing the text lines unless `--json`. */
async function verifyOne(
  storage: Storage,
  name: string,
  options: { deep?: boolean; json?: boolean },
  signing?: SigningKey,
): Promise<VerifyOutcome> {
  const { verifyDatabase } = await import("./verify.ts");
  const { runDrill } = await import("./drill.ts");
  const bar = byteProgress("Verifying", options.json);
  try {
    const report = await verifyDatabase(storage, name, { onBytes: bar.onBytes, signing });
    bar.done();
    const drill = options.deep ? await runDrill(storage, name, signing) : undefined;
    if (drill && !drill.ok) {
      report.failures.push({ key: `${name} (restore drill)`, problem: drill.error ?? "failed" });
    } else if (drill && !options.json) {
      out(
        `✓ Restore drill: txid ${drill.txid} applied from ${drill.objects} objects, integrity_check ok (${drill.durationMs} ms)`,
      );
    }
    const ok = report.failures.length === 0;
    if (!options.json) {
      if (ok) {
        out(
          `✓ All checksums valid: ${report.objects} objects, ${
            formatBytes(report.bytes)
          } in ${report.generations} generation(s) of ${report.db} in ${storage.location}`,
        );
      } else {
        for (const f of report.failures) {
          let line = `✗ ${f.key}: ${f.problem}`;
          if (f.expected !== undefined) line += `, expected ${f.expected}`;
          if (f.actual !== undefined) line += `, actual ${f.actual}`;
          out(line);
        }
        out(
          `${report.failures.length} problem(s) in ${report.objects} objects of ${report.db} in ${storage.location}`,
        );
      }
      out(historyLine(report));
    }
    return {
      ok,
      document: { ok, bucket: storage.location, ...report, ...(drill ? { drill } : {}) },
    };
  } finally {
    bar.done();
  }
}

/** The config at `file` and its entry for database `name` (a usage error naming the others). */
async function configEntry(
  file: string,
  name: string,
): Promise<{ config: WalsyncConfig; entry: DatabaseConfig }> {
  const { loadConfig } = await import("./config.ts");
  const config = await loadConfig(file);
  const entry = config.databases.find((d) => d.name === name);
  if (!entry) {
    throw usageError(
      `${file} has no database named ${name} (it has ${
        config.databases.map((d) => d.name).join(", ")
      })`,
    );
  }
  return { config, entry };
}

/** Builds the commander program; `run` does the work and returns the exit code. */
function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command("walsync")
    .description(
      "Continuous, checksummed backups of SQLite databases to S3-compatible storage or a local directory.\n" +
        "Every object is hashed with SHA256 on the way up and checked on the way down.",
    )
    .version(version, "-V, --version", "print the version")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => Deno.stdout.writeSync(encoder.encode(text)),
      writeErr: (text) => Deno.stderr.writeSync(encoder.encode(redact(text))),
      outputError: (text, write) =>
        write(`walsync: ${text.replace(/^error: /, "").trimEnd()} (see --help)\n`),
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      "after",
      `
Exit codes: 0 ok, 1 other failure, 2 usage error, 3 storage unreachable or access denied,
            4 database error, 5 checksum or integrity failure.

Examples:
  walsync snapshot app.db --bucket file://./backups
  walsync restore app.db --bucket file://./backups -o restored.db
  walsync verify app.db --bucket s3://my-bucket/prod --endpoint http://127.0.0.1:9000
  walsync list --bucket s3://my-bucket/prod --checksums --json`,
    );

  addBucketOptions(
    program.command("snapshot")
      .argument("<db>", "path of the SQLite database to back up")
      .description("upload a consistent full snapshot of a live database (starts a new generation)")
      .option("--name <name>", "store it under this name instead of the file name")
      .option("--takeover", "take the history's lease even when a running watch holds it")
      .addHelpText(
        "after",
        `
Examples:
  walsync snapshot /var/lib/app/app.db --bucket s3://backups/app
  walsync snapshot app.db -b file:///srv/backups --json`,
      ),
  ).action(async (
    dbPath: string,
    options: BucketOptions & { name?: string; takeover?: boolean },
  ) => {
    const { takeSnapshot } = await import("./snapshot.ts");
    const storage = await storageFrom(options);
    const bar = byteProgress("Uploading snapshot", options.json);
    try {
      const result = await takeSnapshot(storage, dbPath, {
        name: options.name !== undefined ? nameArg(options.name) : dbName(dbPath),
        onBytes: bar.onBytes,
        takeover: options.takeover,
      });
      bar.done();
      if (options.json) {
        printJson({ ok: true, command: "snapshot", bucket: storage.location, ...result });
      } else {
        out(
          `✓ Snapshot of ${result.db} uploaded: ${formatBytes(result.size)}, SHA256 ${
            result.sha256.slice(0, 12)
          }…`,
        );
        out(`  ${storage.location}/${result.key}`);
      }
    } finally {
      bar.done();
      storage.close();
    }
  });

  addBucketOptions(
    program.command("restore")
      .argument(
        "[db]",
        "name of the backed-up database (its file name, as `walsync list` shows); omit it on a terminal for the wizard",
      )
      .description(
        "download, verify and write a database; nothing is written unless every checksum matches",
      )
      .option("-o, --output <path>", "where to write the restored database (required)")
      .option("--force", "replace the output file if it exists")
      .option(
        "-c, --config <file>",
        "take the replicas from a walsync.yml: the newest intact one is used",
      )
      .option("--txid <n>", "restore exactly the commits up to this transaction id")
      .option(
        "--timestamp <time>",
        "restore the state at this RFC 3339 time, e.g. 2026-11-24T10:00:00Z",
      )
      .addOption(new Option("--point-in-time <time>", "alias of --timestamp").hideHelp())
      .addHelpText(
        "after",
        `
Examples:
  walsync restore app.db --bucket s3://backups/app -o /tmp/app-restored.db
  walsync restore app.db -b file:///srv/backups -o app.db --force --timestamp 2026-11-24T10:00:00Z`,
      ),
  ).action(async (
    dbArg: string | undefined,
    options: BucketOptions & {
      output?: string;
      force?: boolean;
      txid?: string;
      timestamp?: string;
      pointInTime?: string;
      config?: string;
    },
  ) => {
    if (dbArg === undefined) {
      if (isInteractive() && !options.json) {
        setExit(await openWizard(options));
        return;
      }
      throw usageError(
        "restore needs a database name, e.g. walsync restore app.db --bucket B -o out.db (run it on a terminal without one for the wizard)",
      );
    }
    if (options.output === undefined) {
      throw usageError("restore needs -o <path>: where to write the restored database");
    }
    const output = options.output;
    const target = parseTarget({
      txid: options.txid,
      timestamp: options.timestamp ?? options.pointInTime,
    });
    if (options.config !== undefined) {
      if (options.bucket !== undefined) throw usageError("give --bucket or --config, not both");
      const { restoreFromReplicas } = await import("./replicas.ts");
      const { signingKeyFrom } = await import("./history/sign.ts");
      const name = nameArg(dbArg);
      const { config, entry } = await configEntry(options.config, name);
      const replicas = await Promise.all(entry.replicas.map((r) => openBucket(r.bucket, r.s3)));
      const bar = byteProgress("Restoring", options.json);
      try {
        const result = await restoreFromReplicas(replicas, name, {
          output,
          force: options.force,
          target,
          onBytes: bar.onBytes,
          signing: signingKeyFrom(config.signingKey),
        }, (skipped) => {
          bar.done();
          err(`walsync: replica ${skipped.location} skipped: ${skipped.reason}`);
        });
        bar.done();
        if (options.json) {
          printJson({ ok: true, command: "restore", bucket: result.replica, ...result });
        } else {
          printRestored(result, result.replica);
        }
      } finally {
        bar.done();
        for (const r of replicas) r.close();
      }
      return;
    }
    const { restoreDatabase } = await import("./restore.ts");
    const storage = await storageFrom(options);
    const bar = byteProgress("Restoring", options.json);
    try {
      const result = await restoreDatabase(storage, nameArg(dbArg), {
        output,
        force: options.force,
        target,
        onBytes: bar.onBytes,
      });
      bar.done();
      if (options.json) {
        printJson({ ok: true, command: "restore", bucket: storage.location, ...result });
      } else {
        printRestored(result);
      }
    } finally {
      bar.done();
      storage.close();
    }
  });

  addBucketOptions(
    program.command("verify")
      .argument("<db>", "name of the backed-up database")
      .description(
        "check every object of a database's backup (digest, size, header, chain) without restoring",
      )
      .option(
        "--deep",
        "also run a restore drill: apply the latest state in a temporary directory and run integrity_check",
      )
      .option(
        "-c, --config <file>",
        "check every replica of the database in a walsync.yml, with its signing-key",
      )
      .addHelpText(
        "after",
        `
Exit code 0 when every object is intact, 5 when any is not (each is named).
Examples:
  walsync verify app.db --bucket s3://backups/app
  walsync verify app.db -b file:///srv/backups --json | jq .failures
  walsync verify app.db --config /etc/walsync.yml`,
      ),
  ).action(async (dbArg: string, options: BucketOptions & { deep?: boolean; config?: string }) => {
    const name = nameArg(dbArg);
    if (options.config !== undefined) {
      if (options.bucket !== undefined) throw usageError("give --bucket or --config, not both");
      const { config, entry } = await configEntry(options.config, name);
      const { signingKeyFrom } = await import("./history/sign.ts");
      const signing = signingKeyFrom(config.signingKey);
      const results: VerifyOutcome[] = [];
      for (const replica of entry.replicas) {
        const storage = await openBucket(replica.bucket, replica.s3);
        try {
          await storage.check();
          results.push(await verifyOne(storage, name, options, signing));
        } finally {
          storage.close();
        }
      }
      const ok = results.every((r) => r.ok);
      if (options.json) {
        printJson({ ok, command: "verify", replicas: results.map((r) => r.document) });
      }
      if (!ok) setExit(ExitCode.integrity);
      return;
    }
    const storage = await storageFrom(options);
    try {
      const result = await verifyOne(storage, name, options);
      if (options.json) printJson({ ok: result.ok, command: "verify", ...result.document });
      if (!result.ok) setExit(ExitCode.integrity);
    } finally {
      storage.close();
    }
  });

  addBucketOptions(
    program.command("list")
      .argument("[db]", "show the restorable points of one database")
      .description("list backed-up databases: name, latest snapshot time, size")
      .option("--checksums", "show the SHA256 digest of each snapshot")
      .option("--generations", "with a database name: show every restorable point")
      .addHelpText(
        "after",
        `
Examples:
  walsync list --bucket s3://backups/app --checksums
  walsync list app.db --bucket file:///srv/backups --generations`,
      ),
  ).action(
    async (
      db: string | undefined,
      options: BucketOptions & { checksums?: boolean; generations?: boolean },
    ) => {
      const { listDatabases, listRestorePoints } = await import("./list.ts");
      const storage = await storageFrom(options);
      try {
        if (db !== undefined && options.generations) {
          const points = await listRestorePoints(storage, nameArg(db), {
            checksums: options.checksums,
          });
          if (options.json) {
            printJson({
              ok: true,
              command: "list",
              bucket: storage.location,
              database: nameArg(db),
              points,
            });
            return;
          }
          if (points.length === 0) {
            out(`no backup of ${nameArg(db)} in ${storage.location}`);
            return;
          }
          for (const p of points) {
            const txids = p.kind === "snapshot"
              ? `txid ${p.txidLast}`
              : `txids ${p.txidFirst}-${p.txidLast}`;
            out(
              `${p.generation}  ${p.kind.padEnd(8)}  ${txids.padEnd(16)}  ${
                (p.time ?? "").padEnd(24)
              }  ${formatBytes(p.size).padStart(10)}${p.sha256 ? "  " + p.sha256 : ""}`,
            );
          }
          return;
        }
        const databases = await listDatabases(storage, {
          checksums: options.checksums,
          db: db && nameArg(db),
        });
        if (options.json) {
          printJson({ ok: true, command: "list", bucket: storage.location, databases });
          return;
        }
        if (databases.length === 0) {
          out(`no backups in ${storage.location}`);
          return;
        }
        const header = ["NAME", "LATEST SNAPSHOT", "SIZE", "TXID", "GENERATIONS"];
        if (options.checksums) header.push("SHA256");
        const rows = databases.map((d) => {
          const row = [
            d.name,
            d.latestSnapshot?.created ?? "-",
            d.latestSnapshot ? formatBytes(d.latestSnapshot.size) : "-",
            String(d.latestTxid),
            String(d.generations),
          ];
          if (options.checksums) row.push(d.latestSnapshot?.sha256 ?? "-");
          return row;
        });
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
        for (const row of [header, ...rows]) {
          out(row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
        }
      } finally {
        storage.close();
      }
    },
  );

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
    const { runService } = await import("./service.ts");
    const controller = new AbortController();
    const logger = stderrLogger(options.jsonLogs ?? false);
    const stop = (signal: string) => () => {
      if (controller.signal.aborted) return;
      logger.log("INFO", "stopping: shipping what is pending", { signal });
      controller.abort();
      // Shipping pending frames must not hold a service manager up for long.
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
      // Exit 1 when the last commits could not be shipped, so a service manager can tell.
      const service = { takeover: options.takeover };
      if (!(await runService(config, logger, controller.signal, service))) {
        setExit(ExitCode.failure);
      }
    } finally {
      Deno.removeSignalListener("SIGTERM", onTerm);
      Deno.removeSignalListener("SIGINT", onInt);
    }
  });

  addBucketOptions(
    program.command("replicate")
      .argument("<db>", "name of the backed-up database")
      .description(
        "keep a local read replica up to date by applying new verified segments as they arrive",
      )
      .requiredOption("-o, --output <path>", "the replica file (readable with sqlite3 at any time)")
      .option("--interval <duration>", "how often the bucket is polled", "1s")
      .option("--once", "update once and exit")
      .option("--json-logs", "log one JSON object per line on stderr")
      .option("--takeover", "take each history's lease even when another process holds it")
      .addHelpText(
        "after",
        `
Every segment is checked (digest, chain, WAL checksums) before it is applied to a private shadow
copy; the replica is then updated through SQLite, so readers always see a whole commit.
Examples:
  walsync replicate app.db --bucket s3://backups/app -o /srv/replica/app.db
  walsync replicate app.db -b file:///srv/backups -o replica.db --once`,
      ),
  ).action(
    async (
      db: string,
      options: BucketOptions & {
        output: string;
        interval: string;
        once?: boolean;
        jsonLogs?: boolean;
      },
    ) => {
      const intervalMs = parseDuration("--interval", options.interval);
      const { replicate } = await import("./replicate.ts");
      const storage = await storageFrom(options);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      Deno.addSignalListener("SIGTERM", onSignal);
      Deno.addSignalListener("SIGINT", onSignal);
      try {
        await replicate(storage, nameArg(db), options.output, {
          intervalMs,
          signal: controller.signal,
          logger: stderrLogger(options.jsonLogs ?? false),
          once: options.once,
        });
      } finally {
        Deno.removeSignalListener("SIGTERM", onSignal);
        Deno.removeSignalListener("SIGINT", onSignal);
        storage.close();
      }
    },
  );

  program.command("explain")
    .description("print the effective settings of a config file per database, secrets redacted")
    .requiredOption("-c, --config <file>", "the walsync.yml to explain")
    .option("--json", "print one JSON document instead of text")
    .addHelpText(
      "after",
      `
Every mistake in the file is reported with its line, e.g. walsync.yml:7: sse "AES" must be AES256 or aws:kms.
Example:
  walsync explain --config /etc/walsync.yml`,
    )
    .action(async (options: { config: string; json?: boolean }) => {
      const { explainConfig, loadConfig } = await import("./config.ts");
      const explained = explainConfig(await loadConfig(options.config));
      if (options.json) {
        printJson({ ok: true, command: "explain", ...explained });
        return;
      }
      out(
        `config ${explained.file}: metrics ${
          explained.metricsAddr ?? "off"
        }, ${explained.maxConcurrentUploads} uploads at once`,
      );
      for (const db of explained.databases as Record<string, unknown>[]) {
        out(`${db.name}  ${db.path}`);
        out(
          `  sync every ${formatDuration(db.syncIntervalMs as number)}, snapshot every ${
            formatDuration(db.snapshotIntervalMs as number)
          }, checkpoint past ${formatBytes(db.checkpointBytes as number)}`,
        );
        out(
          `  retention ${
            db.retentionMs ? formatDuration(db.retentionMs as number) : "keep everything"
          }, drills ${
            db.drillIntervalMs ? "every " + formatDuration(db.drillIntervalMs as number) : "off"
          }`,
        );
        for (const r of db.replicas as Record<string, unknown>[]) {
          out(
            `  replica ${r.bucket}${r.endpoint ? " at " + r.endpoint : ""}${
              r.region ? " region " + r.region : ""
            }; credentials ${
              typeof r.credentials === "string" ? r.credentials : "from the file [redacted]"
            }${r.sse ? "; sse " + r.sse : ""}${r.sseKmsKeyId ? " key " + r.sseKmsKeyId : ""}`,
          );
        }
      }
    });

  addBucketOptions(
    program.command("status")
      .argument("[db]", "only this database")
      .description(
        "per database: last snapshot, last shipped position, lag, and whether the chain is continuous",
      )
      .option("--deep", "also download and verify every object (like verify)")
      .option(
        "--db <path>",
        "the live local database: lag is then the age of its oldest commit not in storage",
      )
      .addHelpText(
        "after",
        `
Lag needs the local database (--db): status compares what SQLite has committed there with where
the bucket's head says the history ends. It is exact when everything is shipped; otherwise it is a
lower bound (the age of the newest local change), shown as "at least" (--json: lagKnown).
Exit code 5 when a chain has a gap or (with --deep) an object fails its checks.
Examples:
  walsync status --bucket s3://backups/app
  walsync status --db /var/lib/app/app.db -b s3://backups/app --json
  walsync status app.db -b file:///srv/backups --deep --json`,
      ),
  ).action(async (
    db: string | undefined,
    options: BucketOptions & { deep?: boolean; db?: string },
  ) => {
    const { bucketStatus } = await import("./status.ts");
    const name = db !== undefined
      ? nameArg(db)
      : options.db !== undefined
      ? dbName(options.db)
      : undefined;
    if (options.db !== undefined) await localDatabaseArg(options.db);
    const storage = await storageFrom(options);
    try {
      const report = await bucketStatus(storage, {
        db: name,
        deep: options.deep,
        localPath: options.db,
      });
      const ok = report.every((r) => r.chainOk);
      if (options.json) {
        printJson({ ok, command: "status", bucket: storage.location, databases: report });
      } else if (report.length === 0) out(`no backups in ${storage.location}`);
      else {
        for (const r of report) {
          out(
            `${r.chainOk ? "✓" : "✗"} ${r.name}: txid ${r.latestTxid}, last update ${
              r.lastUpdate ?? "-"
            } (${
              r.lastUpdateAgeSeconds === null ? "-" : Math.round(r.lastUpdateAgeSeconds) + " s ago"
            }), last snapshot ${r.lastSnapshot ?? "-"}, ${r.generations} generation(s)`,
          );
          out(`    lag: ${lagText(r)}`);
          for (const p of r.problems) out(`    ${p}`);
        }
      }
      if (!ok) setExit(ExitCode.integrity);
    } finally {
      storage.close();
    }
  });

  return program;
}

/** Checks that `--db` names an existing file before the bucket is read. */
async function localDatabaseArg(path: string): Promise<void> {
  try {
    if ((await Deno.stat(path)).isFile) return;
  } catch { /* named below */ }
  throw usageError(`--db ${path} does not exist; give the path of the live database file`);
}

/** The lag of one status line in words. */
function lagText(
  r: { lagSeconds: number | null; lagKnown: string; lagReason: string },
): string {
  if (r.lagSeconds === null) return `unknown: ${r.lagReason}`;
  const seconds = `${Math.round(r.lagSeconds * 10) / 10} s`;
  return `${r.lagKnown === "at-least" ? "at least " : ""}${seconds} (${r.lagReason})`;
}

/** Whether a person is at the keyboard: both stdin and stdout are terminals. */
export function isInteractive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
}

async function openWizard(options: BucketOptions): Promise<number> {
  const { runWizard } = await import("../tui/wizard.tsx");
  return await runWizard({
    bucket: options.bucket ?? Deno.env.get("WALSYNC_BUCKET"),
    endpoint: options.endpoint,
    region: options.region,
  });
}

/** Prints an error as one line (or a JSON document) and returns its exit code. */
export function reportError(error: unknown, json: boolean): number {
  let kind = "failure";
  let code: number = ExitCode.failure;
  let message: string;
  let detail: Record<string, unknown> = {};
  if (error instanceof WalsyncError) {
    kind = error.kind;
    code = error.exitCode;
    message = error.message;
    if (error.detail) detail = { ...error.detail };
  } else {
    message = `internal error: ${error instanceof Error ? error.message : String(error)}`;
    if (Deno.env.get("WALSYNC_DEBUG") && error instanceof Error) err(error.stack ?? "");
  }
  if (json) printJson({ ok: false, error: { kind, code, message, ...detail } });
  err(`walsync: ${message}`);
  return code;
}

/** Runs the command line and returns the process exit code. */
export async function runCli(args: string[]): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = buildProgram((code) => (exitCode = code));
  const json = args.includes("--json");
  if (args.length === 0) {
    if (isInteractive()) return await openWizard({});
    buildProgram(() => {}).outputHelp({ error: true });
    return ExitCode.usage;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" || error.code === "commander.version" ||
        error.code === "commander.help"
      ) {
        return ExitCode.ok;
      }
      if (json) {
        printJson({
          ok: false,
          error: {
            kind: "usage",
            code: ExitCode.usage,
            message: error.message.replace(/^error: /, ""),
          },
        });
      }
      return ExitCode.usage;
    }
    return reportError(error, json);
  }
}
