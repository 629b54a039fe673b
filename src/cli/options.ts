/**
 * What several commands share when reading their arguments: the bucket options and opening
 * the storage they name, database names, durations, restore targets, a config file's entry
 * for one database, and the wizard a bare command opens on a terminal.
 * @module
 */
import { basename } from "node:path";
import type { Command } from "commander";
import { bucketForms, openBucket } from "../storage/bucket.ts";
import { usageError } from "../support/errors.ts";
import { invalidNameMessage, isValidDbName } from "../format/layout.ts";
import type { RestoreTarget } from "../ops/restore.ts";
import type { Storage } from "../storage/storage.ts";
import type { DatabaseConfig, WalsyncConfig } from "../service/config.ts";
import { durationMs } from "../support/duration.ts";

/** Options every command that touches a bucket takes. */
export interface BucketOptions {
  bucket?: string;
  endpoint?: string;
  region?: string;
  json?: boolean;
}

/** Sets the exit code of a run whose command finished but found problems (e.g. 5). */
export type SetExit = (code: number) => void;

/** Adds `--bucket`, `--endpoint`, `--region` and `--json` to `command`. */
export function addBucketOptions(command: Command): Command {
  return command
    .option("-b, --bucket <bucket>", `where backups live: ${bucketForms} (env WALSYNC_BUCKET)`)
    .option("--endpoint <url>", "S3 endpoint for MinIO, R2, Tigris, B2 (env AWS_ENDPOINT_URL_S3)")
    .option("--region <region>", "S3 region (env AWS_REGION, default us-east-1)")
    .option("--json", "print one JSON document instead of text");
}

/** The `--bucket` given, or `WALSYNC_BUCKET`; a usage error when neither is. */
export function bucketArg(options: BucketOptions): string {
  const bucket = options.bucket ?? Deno.env.get("WALSYNC_BUCKET");
  if (!bucket) throw usageError(`--bucket is required; give ${bucketForms}`);
  return bucket;
}

/**
 * Opens the bucket the options name and checks that it can be reached, so that a typo or a
 * missing credential fails before any work.
 *
 * @example
 * ```ts
 * const storage = await storageFrom({ bucket: "file:///srv/backups" });
 * try {
 *   console.log(storage.location);
 * } finally {
 *   storage.close();
 * }
 * ```
 */
export async function storageFrom(options: BucketOptions): Promise<Storage> {
  const bucket = bucketArg(options);
  const storage = await openBucket(bucket, { endpoint: options.endpoint, region: options.region });
  await storage.check();
  return storage;
}

/**
 * A database name given as a name (`restore <db>`, `--name`): the one check every way a name
 * enters goes through (config files use the same `isValidDbName`).
 */
export function nameArg(name: string): string {
  if (!isValidDbName(name)) throw usageError(invalidNameMessage(name));
  return name;
}

/** The name a database file is stored under: its file name. */
export function dbName(path: string): string {
  const name = basename(path);
  if (!name || name === "." || name === "..") {
    throw usageError(`${path} is not a database file name`);
  }
  return name;
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

/** Checks that `--db` names an existing file before the bucket is read. */
export async function localDatabaseArg(path: string): Promise<void> {
  try {
    if ((await Deno.stat(path)).isFile) return;
  } catch { /* named below */ }
  throw usageError(`--db ${path} does not exist; give the path of the live database file`);
}

/** The config at `file` and its entry for database `name` (a usage error naming the others). */
export async function configEntry(
  file: string,
  name: string,
): Promise<{ config: WalsyncConfig; entry: DatabaseConfig }> {
  const { loadConfig } = await import("../service/config.ts");
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

/** Whether a person is at the keyboard: both stdin and stdout are terminals. */
export function isInteractive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
}

/** Runs the interactive restore wizard, starting from the bucket options given; its exit code. */
export async function openWizard(options: BucketOptions): Promise<number> {
  const { runWizard } = await import("../../tui/wizard.tsx");
  return await runWizard({
    bucket: options.bucket ?? Deno.env.get("WALSYNC_BUCKET"),
    endpoint: options.endpoint,
    region: options.region,
  });
}
