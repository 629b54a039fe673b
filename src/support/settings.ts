/**
 * The one table of Walsync's tunable settings: for each its YAML name, its `watch` flag, its
 * default, how it is parsed and its bounds, and how `walsync explain` words it. The `watch`
 * flags, the config file parser, the watcher's defaults and `explain` all read it, so a default
 * or a limit is changed here and nowhere else.
 *
 * @example
 * ```ts
 * const sync = setting("syncIntervalMs");
 * parseSetting(sync, "500ms"); // 500
 * inBounds(sync, parseSetting(sync, "5ms")!); // false: sync-interval must be at least 10ms
 * settingDefaults().checkpointBytes; // 4194304
 * ```
 * @module
 */
import { durationMs, formatDuration } from "./duration.ts";
import { formatBytes } from "./progress.ts";

/** Settings each database has (a top-level value in walsync.yml is the default for all). */
export type DatabaseSettingKey =
  | "syncIntervalMs"
  | "snapshotIntervalMs"
  | "checkpointBytes"
  | "retentionMs"
  | "drillIntervalMs";

/** Settings of the whole process (top level of walsync.yml only). */
export type ProcessSettingKey = "maxConcurrentUploads";

/** Every setting in the table: its field name in `DatabaseConfig` / `WalsyncConfig`. */
export type SettingKey = DatabaseSettingKey | ProcessSettingKey;

/** One row of the table. */
export interface Setting {
  /** Field name in the parsed configuration. */
  key: SettingKey;
  /** Per database, or once for the process. */
  scope: "database" | "process";
  /** Name in walsync.yml. */
  yaml: string;
  /** The `walsync watch` flag. */
  flag: string;
  /** The flag's value in `--help`: `<duration>`. */
  placeholder: string;
  /** The flag's `--help` line. */
  help: string;
  /** The default, written as on the command line or in walsync.yml. */
  default: string;
  /** A duration (`500ms`, `1s`, `24h`, `7d`; bare numbers are seconds) or a whole number. */
  kind: "duration" | "count";
  /** Smallest value allowed. */
  min: number;
  /** What a value must be, for messages (`at least 10ms`); empty when every duration is. */
  bound: string;
  /** The line of a database's `walsync explain` text it is on (process settings: 0). */
  explainLine: 0 | 1 | 2;
  /** How `walsync explain` words a value: `sync every 1s`. */
  explain(value: number): string;
}

const duration = { kind: "duration", min: 0, bound: "" } as const;

/**
 * The settings, in the order walsync.yml documents them and `explain` prints them. The order
 * the `watch` flags appear in `--help` is set where they are registered.
 */
export const settings: readonly Setting[] = [
  {
    key: "syncIntervalMs",
    scope: "database",
    yaml: "sync-interval",
    flag: "--sync-interval",
    placeholder: "<duration>",
    help: "how often new commits are shipped",
    default: "1s",
    ...duration,
    min: 10,
    bound: "at least 10ms",
    explainLine: 1,
    explain: (ms) => `sync every ${formatDuration(ms)}`,
  },
  {
    key: "snapshotIntervalMs",
    scope: "database",
    yaml: "snapshot-interval",
    flag: "--snapshot-interval",
    placeholder: "<duration>",
    help: "how often a fresh full snapshot is taken (0 = never)",
    default: "24h",
    ...duration,
    explainLine: 1,
    explain: (ms) => `snapshot every ${formatDuration(ms)}`,
  },
  {
    key: "checkpointBytes",
    scope: "database",
    yaml: "checkpoint-size",
    flag: "--checkpoint-size",
    placeholder: "<bytes>",
    help: "checkpoint the WAL once it grows past this many bytes",
    default: String(4 * 1024 * 1024),
    kind: "count",
    min: 4096,
    bound: "a byte count of at least 4096",
    explainLine: 1,
    explain: (bytes) => `checkpoint past ${formatBytes(bytes)}`,
  },
  {
    key: "retentionMs",
    scope: "database",
    yaml: "retention",
    flag: "--retention",
    placeholder: "<duration>",
    help: "keep what restores any point of this window, delete older generations (0 = keep all)",
    default: "0",
    ...duration,
    explainLine: 2,
    explain: (ms) => `retention ${ms ? formatDuration(ms) : "keep everything"}`,
  },
  {
    key: "drillIntervalMs",
    scope: "database",
    yaml: "drill-interval",
    flag: "--drill-interval",
    placeholder: "<duration>",
    help: "run a restore drill this often (0 = never)",
    default: "0",
    ...duration,
    explainLine: 2,
    explain: (ms) => `drills ${ms ? "every " + formatDuration(ms) : "off"}`,
  },
  {
    key: "maxConcurrentUploads",
    scope: "process",
    yaml: "max-uploads",
    flag: "--max-uploads",
    placeholder: "<n>",
    help: "uploads in flight at once across all databases",
    default: "8",
    kind: "count",
    min: 1,
    bound: "a whole number of at least 1",
    explainLine: 0,
    explain: (n) => `${n} uploads at once`,
  },
];

/** The settings each database has, in table order. */
export const databaseSettings: readonly Setting[] = settings.filter((s) => s.scope === "database");

/** The settings of the whole process, in table order. */
export const processSettings: readonly Setting[] = settings.filter((s) => s.scope === "process");

/** The row of `key`. */
export function setting(key: SettingKey): Setting {
  return settings.find((s) => s.key === key)!;
}

/**
 * Parses a value of `s` as written in a flag or in YAML (where it may already be a number):
 * milliseconds or a count, or null when it is not one. Bounds are checked by the caller, which
 * words the message for where the value came from.
 */
export function parseSetting(s: Setting, value: unknown): number | null {
  if (s.kind === "duration") return durationMs(String(value));
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

/** Whether a parsed value is within the bounds of `s`. */
export function inBounds(s: Setting, value: number): boolean {
  return value >= s.min;
}

/** Every setting's default, parsed: `{ syncIntervalMs: 1000, … }`. */
export function settingDefaults(): Record<SettingKey, number> {
  return Object.fromEntries(settings.map((s) => [s.key, parseSetting(s, s.default)!])) as Record<
    SettingKey,
    number
  >;
}
