/**
 * The configuration file (`walsync.yml`): databases, their replicas, intervals, retention and
 * the metrics address. `${VAR}` anywhere in the file is replaced by the environment variable
 * before parsing; a mistake is reported with its line.
 *
 * ```yaml
 * sync-interval: 1s            # defaults for every database
 * snapshot-interval: 24h
 * retention: 168h              # keep what restores any point of the last 7 days
 * metrics-addr: 127.0.0.1:9090 # off unless given
 * signing-key: ${WALSYNC_SIGNING_KEY} # optional: HMAC-signs every history
 * databases:
 *   - path: /var/lib/app/app.db
 *     replicas:
 *       - bucket: s3://backups/app
 *         endpoint: ${R2_ENDPOINT}
 *         sse: aws:kms
 *       - bucket: file:///srv/backups
 * ```
 * @module
 */
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { type Document, isMap, isSeq, LineCounter, parseDocument } from "yaml";
import { parseBucket, type S3Settings } from "../storage/bucket.ts";
import { usageError, WalsyncError } from "../support/errors.ts";
import { invalidNameMessage, isValidDbName } from "../format/layout.ts";
import { registerSecret } from "../support/redact.ts";
import {
  type DatabaseSettingKey,
  databaseSettings,
  inBounds,
  parseSetting,
  processSettings,
  type Setting,
  settingDefaults,
  type SettingKey,
} from "../support/settings.ts";

export { durationMs, formatDuration } from "../support/duration.ts";

/** One place a database is replicated to. */
export interface ReplicaConfig {
  /** `--bucket` form: bucket name, `s3://…` or `file://…`. */
  bucket: string;
  /** S3 settings (endpoint, region, credentials, encryption). */
  s3: S3Settings;
}

/** One database and how it is backed up. */
export interface DatabaseConfig {
  /** Absolute path of the database file. */
  path: string;
  /** Name in the bucket. */
  name: string;
  /** Sync interval in ms. */
  syncIntervalMs: number;
  /** Snapshot interval in ms (0 = never). */
  snapshotIntervalMs: number;
  /** Checkpoint threshold in bytes. */
  checkpointBytes: number;
  /** Restore window in ms (0 = keep everything). */
  retentionMs: number;
  /** Restore drill interval in ms (0 = no drills). */
  drillIntervalMs: number;
  /** Where it goes; at least one. */
  replicas: ReplicaConfig[];
}

/** A whole configuration file, defaults applied. */
export interface WalsyncConfig {
  /** The file it came from. */
  file: string;
  /** `host:port` for Prometheus metrics, or undefined when off. */
  metricsAddr?: string;
  /** Uploads in flight at once across all databases. */
  maxConcurrentUploads: number;
  /** HMAC key that signs every history (`signing-key:`); `WALSYNC_SIGNING_KEY` when absent. */
  signingKey?: string;
  /** The databases. */
  databases: DatabaseConfig[];
}

/** Replaces `${NAME}` with the environment variable; a missing one is an error naming its line. */
function expandEnv(text: string, file: string, env: (name: string) => string | undefined): string {
  return text.split("\n").map((line, index) => {
    // Comments are left alone: a `${NAME}` in a comment is documentation, not a reference.
    const hash = line.search(/(^|\s)#/);
    const code = hash < 0 ? line : line.slice(0, hash);
    const comment = hash < 0 ? "" : line.slice(hash);
    return code.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const value = env(name);
      if (value === undefined) {
        throw usageError(
          `${file}:${
            index + 1
          }: environment variable ${name} is not set; export it or remove \${${name}}`,
        );
      }
      return value;
    }) + comment;
  }).join("\n");
}

const topKeys = [
  ...databaseSettings.map((s) => s.yaml),
  "metrics-addr",
  ...processSettings.map((s) => s.yaml),
  "signing-key",
  "databases",
];
const dbKeys = [
  "path",
  "name",
  ...databaseSettings.map((s) => s.yaml),
  "replicas",
  "bucket",
  "endpoint",
  "region",
];
const replicaKeys = [
  "bucket",
  "endpoint",
  "region",
  "access-key-id",
  "secret-access-key",
  "session-token",
  "sse",
  "sse-kms-key-id",
];

/** Where a value sits in the document: keys and list indexes from the root. */
type NodePath = (string | number)[];

/** A parsed config file, kept to name the line of every mistake. */
class ConfigSource {
  constructor(
    /** The file, as named in messages. */
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Directory relative paths in the file resolve against. */
  get base(): string {
    return dirname(resolve(this.file));
  }

  /** The YAML node at `path` (for telling a list or mapping from a scalar). */
  node(path: NodePath): unknown {
    return this.doc.getIn(path, true);
  }

  /**
   * The line of `path`. A setting that is missing has no node of its own: the line of the
   * nearest enclosing one (the database entry, the replica, the document), never line 0.
   */
  lineOf(path: NodePath): number {
    for (let n = path.length; n >= 0; n--) {
      const node = (n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true)) as
        | { range?: [number, number, number] }
        | null
        | undefined;
      if (node?.range) return this.lines.linePos(node.range[0]).line;
    }
    return 1;
  }

  /** Throws a usage error naming the file and the line of `path`. */
  fail(path: NodePath, problem: string): never {
    throw usageError(`${this.file}:${this.lineOf(path)}: ${problem}`);
  }

  /** Fails on any key of `value` not in `allowed`. */
  checkKeys(value: Record<string, unknown>, allowed: string[], path: NodePath, what: string) {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        this.fail(
          [...path, key],
          `unknown ${what} setting "${key}" (allowed: ${allowed.join(", ")})`,
        );
      }
    }
  }

  /** A non-empty string (a number is taken as its text), trimmed. */
  str(value: unknown, path: NodePath, what: string): string {
    if (typeof value === "number") return String(value);
    if (typeof value !== "string" || value.trim() === "") {
      this.fail(path, `${what} must be a non-empty string`);
    }
    return value.trim();
  }

  /** A setting of the table: `fallback` when absent, else parsed and checked against its bounds. */
  setting(s: Setting, value: unknown, path: NodePath, fallback: number): number {
    if (value === undefined) return fallback;
    const parsed = parseSetting(s, value);
    if (s.kind === "duration" && parsed === null) {
      this.fail(path, `"${value}" is not a duration; write e.g. 500ms, 1s, 10m, 24h or 7d`);
    }
    if (parsed === null || !inBounds(s, parsed)) this.fail(path, `${s.yaml} must be ${s.bound}`);
    return parsed;
  }
}

/** Parses the YAML of `text` (after `${VAR}` expansion); fails on a syntax error with its line. */
function readSource(
  text: string,
  file: string,
  env: (name: string) => string | undefined,
): { source: ConfigSource; root: Record<string, unknown> } {
  const lines = new LineCounter();
  const doc = parseDocument(expandEnv(text, file, env), { lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line ?? 0;
    throw usageError(`${file}:${line}: invalid YAML: ${e.message.split("\n")[0]}`);
  }
  const root = doc.toJS() as Record<string, unknown> | null;
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    throw usageError(`${file}:1: expected a mapping with a databases: list`);
  }
  return { source: new ConfigSource(file, doc, lines), root };
}

/** The settings of `list` as read from `values` at `path`, each falling back to `defaults`. */
function readSettings(
  source: ConfigSource,
  list: readonly Setting[],
  values: Record<string, unknown>,
  path: NodePath,
  defaults: Record<SettingKey, number>,
): Record<SettingKey, number> {
  const read = { ...defaults };
  for (const s of list) {
    read[s.key] = source.setting(s, values[s.yaml], [...path, s.yaml], defaults[s.key]);
  }
  return read;
}

/** `signing-key:` (registered as a secret) and `metrics-addr:` of the top level. */
function readTopLevel(
  source: ConfigSource,
  root: Record<string, unknown>,
): { signingKey?: string; metricsAddr?: string } {
  let signingKey: string | undefined;
  if (root["signing-key"] !== undefined) {
    signingKey = source.str(root["signing-key"], ["signing-key"], "signing-key");
    registerSecret(signingKey);
  }
  let metricsAddr: string | undefined;
  if (root["metrics-addr"] !== undefined) {
    metricsAddr = source.str(root["metrics-addr"], ["metrics-addr"], "metrics-addr");
    if (!/^[^:]*:\d{1,5}$/.test(metricsAddr)) {
      source.fail(
        ["metrics-addr"],
        `metrics-addr "${metricsAddr}" must be host:port, e.g. 127.0.0.1:9090`,
      );
    }
  }
  return { signingKey, metricsAddr };
}

/** One `databases:` entry, its settings falling back to the top level's. */
function readDatabase(
  source: ConfigSource,
  entry: unknown,
  at: NodePath,
  defaults: Record<SettingKey, number>,
): DatabaseConfig {
  if (
    typeof entry !== "object" || entry === null || Array.isArray(entry) ||
    !isMap(source.node(at))
  ) {
    source.fail(at, "each database must be a mapping with path: and replicas:");
  }
  const db = entry as Record<string, unknown>;
  source.checkKeys(db, dbKeys, at, "database");
  const path = resolve(source.base, source.str(db.path, [...at, "path"], "path"));
  const name = db.name === undefined
    ? basename(path)
    : source.str(db.name, [...at, "name"], "name");
  if (!isValidDbName(name)) source.fail([...at, "name"], invalidNameMessage(name));
  const replicas = readReplicas(source, db, at, name);
  const values = readSettings(source, databaseSettings, db, at, defaults);
  return {
    path,
    name,
    syncIntervalMs: values.syncIntervalMs,
    snapshotIntervalMs: values.snapshotIntervalMs,
    checkpointBytes: values.checkpointBytes,
    retentionMs: values.retentionMs,
    drillIntervalMs: values.drillIntervalMs,
    replicas,
  };
}

/** A database's `replicas:` list, or the one replica its `bucket:` shorthand names. */
function readReplicas(
  source: ConfigSource,
  db: Record<string, unknown>,
  at: NodePath,
  name: string,
): ReplicaConfig[] {
  let list = db.replicas as unknown[] | undefined;
  if (list === undefined && db.bucket !== undefined) {
    list = [{ bucket: db.bucket, endpoint: db.endpoint, region: db.region }];
  } else if (db.bucket !== undefined) {
    source.fail([...at, "bucket"], "give either bucket: or replicas:, not both");
  }
  if (!Array.isArray(list) || list.length === 0) {
    source.fail(at, `database ${name} needs replicas: (a list of - bucket: …) or bucket:`);
  }
  const shorthand = db.replicas === undefined;
  return list.map((r, j) =>
    readReplica(source, r, shorthand ? at : [...at, "replicas", j], shorthand)
  );
}

/** One replica: its bucket (a relative `file://` beside the file) and its S3 settings. */
function readReplica(
  source: ConfigSource,
  value: unknown,
  at: NodePath,
  shorthand: boolean,
): ReplicaConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    source.fail(at, "each replica must be a mapping with bucket:");
  }
  const replica = value as Record<string, unknown>;
  if (!shorthand) source.checkKeys(replica, replicaKeys, at, "replica");
  let bucket = source.str(replica.bucket, [...at, "bucket"], "bucket");
  try {
    parseBucket(bucket);
  } catch (err) {
    source.fail([...at, "bucket"], err instanceof WalsyncError ? err.message : String(err));
  }
  // Like path:, a relative file:// directory is beside the file, not in the working directory.
  const dir = bucket.startsWith("file://") ? bucket.slice("file://".length) : undefined;
  if (dir !== undefined && !isAbsolute(dir)) bucket = `file://${resolve(source.base, dir)}`;
  const s3: S3Settings = {};
  if (replica.endpoint !== undefined) {
    s3.endpoint = source.str(replica.endpoint, [...at, "endpoint"], "endpoint");
  }
  if (replica.region !== undefined) {
    s3.region = source.str(replica.region, [...at, "region"], "region");
  }
  const credentials = readCredentials(source, replica, at);
  if (credentials) s3.credentials = credentials;
  readEncryption(source, replica, at, s3);
  return { bucket, s3 };
}

/** A replica's access key, secret and session token (all registered as secrets), if given. */
function readCredentials(
  source: ConfigSource,
  replica: Record<string, unknown>,
  at: NodePath,
): S3Settings["credentials"] {
  const key = replica["access-key-id"];
  const secret = replica["secret-access-key"];
  if ((key === undefined) !== (secret === undefined)) {
    source.fail(
      at,
      "give both access-key-id and secret-access-key, or neither (then the AWS_* environment is used)",
    );
  }
  if (key === undefined) return undefined;
  registerSecret(String(secret));
  const token = replica["session-token"];
  if (token !== undefined) registerSecret(String(token));
  return {
    accessKeyId: source.str(key, [...at, "access-key-id"], "access-key-id"),
    secretAccessKey: source.str(secret, [...at, "secret-access-key"], "secret-access-key"),
    ...(token !== undefined
      ? { sessionToken: source.str(token, [...at, "session-token"], "session-token") }
      : {}),
  };
}

/** A replica's `sse:` and `sse-kms-key-id:`, set on `s3`. */
function readEncryption(
  source: ConfigSource,
  replica: Record<string, unknown>,
  at: NodePath,
  s3: S3Settings,
): void {
  if (replica.sse !== undefined) {
    const sse = source.str(replica.sse, [...at, "sse"], "sse");
    if (sse !== "AES256" && sse !== "aws:kms") {
      source.fail([...at, "sse"], `sse "${sse}" must be AES256 or aws:kms`);
    }
    s3.sse = sse;
  }
  if (replica["sse-kms-key-id"] !== undefined) {
    if (s3.sse !== "aws:kms") {
      source.fail([...at, "sse-kms-key-id"], "sse-kms-key-id needs sse: aws:kms");
    }
    s3.sseKmsKeyId = source.str(
      replica["sse-kms-key-id"],
      [...at, "sse-kms-key-id"],
      "sse-kms-key-id",
    );
  }
}

/** The `databases:` list; each name used once. */
function readDatabases(
  source: ConfigSource,
  root: Record<string, unknown>,
  defaults: Record<SettingKey, number>,
): DatabaseConfig[] {
  const list = root.databases;
  if (!Array.isArray(list) || list.length === 0 || !isSeq(source.node(["databases"]))) {
    source.fail(
      ["databases"],
      "databases: must be a list with at least one entry (- path: /var/lib/app/app.db)",
    );
  }
  const names = new Map<string, number>();
  return list.map((entry, i): DatabaseConfig => {
    const at = ["databases", i];
    const db = readDatabase(source, entry, at, defaults);
    const seen = names.get(db.name);
    if (seen !== undefined) {
      source.fail(
        [...at, "path"],
        `database name ${db.name} is used twice (also entry ${seen + 1}); set name: on one of them`,
      );
    }
    names.set(db.name, i);
    return db;
  });
}

/**
 * Parses configuration text. `file` names it in messages; relative paths resolve beside it.
 *
 * @example
 * ```ts
 * const config = parseConfig("databases:\n  - path: app.db\n    bucket: file:///srv/b\n", "walsync.yml");
 * config.databases[0].syncIntervalMs; // 1000
 * ```
 */
export function parseConfig(
  text: string,
  file: string,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): WalsyncConfig {
  const { source, root } = readSource(text, file, env);
  source.checkKeys(root, topKeys, [], "top-level");
  const defaults = readSettings(source, databaseSettings, root, [], settingDefaults());
  const { signingKey, metricsAddr } = readTopLevel(source, root);
  const processWide = readSettings(source, processSettings, root, [], defaults);
  const databases = readDatabases(source, root, defaults);
  return {
    file,
    metricsAddr,
    maxConcurrentUploads: processWide.maxConcurrentUploads,
    ...(signingKey ? { signingKey } : {}),
    databases,
  };
}

/** Reads and parses a configuration file. */
export async function loadConfig(file: string): Promise<WalsyncConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw usageError(`config file ${file} not found; check --config`);
    }
    throw usageError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

/** The effective settings, with every secret replaced by `[redacted]` (for `walsync explain`). */
export function explainConfig(config: WalsyncConfig): Record<string, unknown> {
  return {
    file: config.file,
    metricsAddr: config.metricsAddr ?? null,
    maxConcurrentUploads: config.maxConcurrentUploads,
    ...(config.signingKey ? { signingKey: "[redacted]" } : {}),
    databases: config.databases.map((db) => ({
      name: db.name,
      path: db.path,
      ...Object.fromEntries(databaseSettings.map((s) => [s.key, db[s.key as DatabaseSettingKey]])),
      replicas: db.replicas.map((r) => ({
        bucket: r.bucket,
        // Credentials written into the URL (user:password@) are not printed back.
        endpoint: r.s3.endpoint?.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1[redacted]@") ??
          null,
        region: r.s3.region ?? null,
        credentials: r.s3.credentials
          ? {
            accessKeyId: "[redacted]",
            secretAccessKey: "[redacted]",
            ...(r.s3.credentials.sessionToken ? { sessionToken: "[redacted]" } : {}),
          }
          : "from the environment (AWS_*)",
        sse: r.s3.sse ?? null,
        sseKmsKeyId: r.s3.sseKmsKeyId ?? null,
      })),
    })),
  };
}
