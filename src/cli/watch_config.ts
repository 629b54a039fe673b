/**
 * The configuration `walsync watch` runs: read from `--config`, or built from its database
 * arguments and the flags of the settings table (`src/support/settings.ts`).
 * @module
 */
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { parseBucket } from "../storage/bucket.ts";
import type { DatabaseConfig, WalsyncConfig } from "../service/config.ts";
import { usageError } from "../support/errors.ts";
import { parseSetting, type Setting, setting, type SettingKey } from "../support/settings.ts";
import { bucketArg, type BucketOptions, dbName, parseDuration, storageFrom } from "./options.ts";

/** Flags of `walsync watch`: the bucket options, the settings (as typed) and the rest. */
export interface WatchFlags extends BucketOptions {
  config?: string;
  metricsAddr?: string;
  jsonLogs?: boolean;
  takeover?: boolean;
  [setting: string]: string | boolean | undefined;
}

/**
 * The settings `watch` takes as flags, in the order its `--help` lists them; `--metrics-addr`
 * comes after the first four.
 */
const beforeMetrics: SettingKey[] = [
  "syncIntervalMs",
  "snapshotIntervalMs",
  "retentionMs",
  "drillIntervalMs",
];
const afterMetrics: SettingKey[] = ["checkpointBytes", "maxConcurrentUploads"];

/** The commander option of a setting, its default from the table. */
function settingOption(s: Setting): Option {
  return new Option(`${s.flag} ${s.placeholder}`, s.help).default(s.default);
}

/** Adds the settings' flags and `--metrics-addr` to the `watch` command. */
export function addSettingFlags(command: Command): Command {
  for (const key of beforeMetrics) command.addOption(settingOption(setting(key)));
  command.option(
    "--metrics-addr <host:port>",
    "serve Prometheus metrics at /metrics (off by default; host defaults to 127.0.0.1)",
  );
  for (const key of afterMetrics) command.addOption(settingOption(setting(key)));
  return command;
}

/** A setting's value from its flag; usage errors name the flag. */
function settingFromFlag(s: Setting, options: WatchFlags): number {
  const text = String(options[settingOption(s).attributeName()]);
  if (s.kind === "duration") {
    const ms = parseDuration(s.flag, text);
    if (ms < s.min) throw usageError(`${s.flag} must be ${s.bound}`);
    return ms;
  }
  const value = parseSetting(s, text);
  if (value === null || value < s.min) throw usageError(`${s.flag} ${text} must be ${s.bound}`);
  return value;
}

/** The configuration `watch` runs: from --config, or from its arguments and flags. */
export async function watchConfig(
  paths: string[],
  options: WatchFlags,
  fromCli: (option: string) => boolean,
): Promise<WalsyncConfig> {
  if (options.config !== undefined) {
    return await fromConfigFile(options.config, paths, options, fromCli);
  }
  if (paths.length === 0) {
    throw usageError("watch needs at least one database path (or --config walsync.yml)");
  }
  const bucket = bucketArg(options);
  parseBucket(bucket);
  const values = {} as Record<SettingKey, number>;
  for (const key of [...beforeMetrics, ...afterMetrics]) {
    values[key] = settingFromFlag(setting(key), options);
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
      syncIntervalMs: values.syncIntervalMs,
      snapshotIntervalMs: values.snapshotIntervalMs,
      checkpointBytes: values.checkpointBytes,
      retentionMs: values.retentionMs,
      drillIntervalMs: values.drillIntervalMs,
      replicas: [{ bucket, s3: { endpoint: options.endpoint, region: options.region } }],
    };
  });
  // The bucket is checked once up front so that a typo fails at start, not in the logs.
  const storage = await storageFrom(options);
  storage.close();
  return {
    file: "(command line)",
    metricsAddr: options.metricsAddr,
    maxConcurrentUploads: values.maxConcurrentUploads,
    databases,
  };
}

/** The config file's configuration; `--metrics-addr` is the one flag that may add to it. */
async function fromConfigFile(
  file: string,
  paths: string[],
  options: WatchFlags,
  fromCli: (option: string) => boolean,
): Promise<WalsyncConfig> {
  if (paths.length > 0 || options.bucket !== undefined) {
    throw usageError(
      "give databases and --bucket either on the command line or in --config, not both",
    );
  }
  // A flag that the config file would silently override is a mistake worth stopping for.
  const overridden = [
    ...[...beforeMetrics, ...afterMetrics].map((key) => settingOption(setting(key))),
    new Option("--endpoint"),
    new Option("--region"),
  ];
  for (const option of overridden) {
    if (fromCli(option.attributeName())) {
      throw usageError(`${option.long} has no effect with --config; set it in ${file} instead`);
    }
  }
  const { loadConfig } = await import("../service/config.ts");
  const config = await loadConfig(file);
  if (options.metricsAddr !== undefined) config.metricsAddr = options.metricsAddr;
  return config;
}
