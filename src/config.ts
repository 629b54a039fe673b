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
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import { parseBucket, type S3Settings } from "./bucket.ts";
import { usageError, WalsyncError } from "./errors.ts";
import { invalidNameMessage, isValidDbName } from "./layout.ts";
import { registerSecret } from "./redact.ts";
import { durationMs } from "./duration.ts";

export { durationMs, formatDuration } from "./duration.ts";

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
  "sync-interval",
  "snapshot-interval",
  "checkpoint-size",
  "retention",
  "drill-interval",
  "metrics-addr",
  "max-uploads",
  "signing-key",
  "databases",
];
const dbKeys = [
  "path",
  "name",
  "sync-interval",
  "snapshot-interval",
  "checkpoint-size",
  "retention",
  "drill-interval",
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

/** Parses configuration text. `file` names it in messages; relative paths resolve beside it. */
export function parseConfig(
  text: string,
  file: string,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): WalsyncConfig {
  const expanded = expandEnv(text, file, env);
  const lines = new LineCounter();
  const doc = parseDocument(expanded, { lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line ?? 0;
    throw usageError(`${file}:${line}: invalid YAML: ${e.message.split("\n")[0]}`);
  }
  // A setting that is missing has no node of its own: name the line of the nearest enclosing
  // one (the database entry, the replica, the document), never line 0.
  const lineOf = (path: (string | number)[]): number => {
    for (let n = path.length; n >= 0; n--) {
      const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)) as
        | { range?: [number, number, number] }
        | null
        | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
    }
    return 1;
  };
  const fail = (path: (string | number)[], problem: string): never => {
    throw usageError(`${file}:${lineOf(path)}: ${problem}`);
  };
  const root = doc.toJS() as Record<string, unknown> | null;
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    throw usageError(`${file}:1: expected a mapping with a databases: list`);
  }
  const checkKeys = (
    value: Record<string, unknown>,
    allowed: string[],
    path: (string | number)[],
    what: string,
  ) => {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        fail([...path, key], `unknown ${what} setting "${key}" (allowed: ${allowed.join(", ")})`);
      }
    }
  };
  checkKeys(root, topKeys, [], "top-level");
  const str = (value: unknown, path: (string | number)[], what: string): string => {
    if (typeof value === "number") return String(value);
    if (typeof value !== "string" || value.trim() === "") {
      fail(path, `${what} must be a non-empty string`);
    }
    return (value as string).trim();
  };
  const duration = (value: unknown, path: (string | number)[], fallback: number): number => {
    if (value === undefined) return fallback;
    const ms = durationMs(String(value));
    if (ms === null) {
      fail(path, `"${value}" is not a duration; write e.g. 500ms, 1s, 10m, 24h or 7d`);
    }
    return ms!;
  };
  const defaults = {
    sync: duration(root["sync-interval"], ["sync-interval"], 1000),
    snapshot: duration(root["snapshot-interval"], ["snapshot-interval"], 24 * 3_600_000),
    retention: duration(root["retention"], ["retention"], 0),
    drill: duration(root["drill-interval"], ["drill-interval"], 0),
    checkpoint: root["checkpoint-size"] === undefined
      ? 4 * 1024 * 1024
      : Number(root["checkpoint-size"]),
  };
  if (!Number.isSafeInteger(defaults.checkpoint) || defaults.checkpoint < 4096) {
    fail(["checkpoint-size"], "checkpoint-size must be a byte count of at least 4096");
  }
  let signingKey: string | undefined;
  if (root["signing-key"] !== undefined) {
    signingKey = str(root["signing-key"], ["signing-key"], "signing-key");
    registerSecret(signingKey);
  }
  let metricsAddr: string | undefined;
  if (root["metrics-addr"] !== undefined) {
    metricsAddr = str(root["metrics-addr"], ["metrics-addr"], "metrics-addr");
    if (!/^[^:]*:\d{1,5}$/.test(metricsAddr)) {
      fail(
        ["metrics-addr"],
        `metrics-addr "${metricsAddr}" must be host:port, e.g. 127.0.0.1:9090`,
      );
    }
  }
  const maxUploads = root["max-uploads"] === undefined ? 8 : Number(root["max-uploads"]);
  if (!Number.isSafeInteger(maxUploads) || maxUploads < 1) {
    fail(["max-uploads"], "max-uploads must be a whole number of at least 1");
  }

  const list = root.databases;
  if (!Array.isArray(list) || list.length === 0 || !isSeq(doc.get("databases", true))) {
    fail(
      ["databases"],
      "databases: must be a list with at least one entry (- path: /var/lib/app/app.db)",
    );
  }
  const base = dirname(resolve(file));
  const names = new Map<string, number>();
  const databases = (list as unknown[]).map((entry, i): DatabaseConfig => {
    const at = ["databases", i];
    if (
      typeof entry !== "object" || entry === null || Array.isArray(entry) ||
      !isMap(doc.getIn(at, true))
    ) {
      fail(at, "each database must be a mapping with path: and replicas:");
    }
    const db = entry as Record<string, unknown>;
    checkKeys(db, dbKeys, at, "database");
    const path = resolve(base, str(db.path, [...at, "path"], "path"));
    const name = db.name === undefined ? basename(path) : str(db.name, [...at, "name"], "name");
    if (!isValidDbName(name)) {
      fail([...at, "name"], invalidNameMessage(name));
    }
    let replicaList = db.replicas as unknown[] | undefined;
    if (replicaList === undefined && db.bucket !== undefined) {
      replicaList = [{ bucket: db.bucket, endpoint: db.endpoint, region: db.region }];
    } else if (db.bucket !== undefined) {
      fail([...at, "bucket"], "give either bucket: or replicas:, not both");
    }
    if (!Array.isArray(replicaList) || replicaList.length === 0) {
      fail(at, `database ${name} needs replicas: (a list of - bucket: …) or bucket:`);
    }
    const replicas = replicaList!.map((r, j): ReplicaConfig => {
      const rat = db.replicas === undefined ? at : [...at, "replicas", j];
      if (typeof r !== "object" || r === null || Array.isArray(r)) {
        fail(rat, "each replica must be a mapping with bucket:");
      }
      const replica = r as Record<string, unknown>;
      if (db.replicas !== undefined) checkKeys(replica, replicaKeys, rat, "replica");
      let bucket = str(replica.bucket, [...rat, "bucket"], "bucket");
      try {
        parseBucket(bucket);
      } catch (err) {
        fail([...rat, "bucket"], err instanceof WalsyncError ? err.message : String(err));
      }
      // Like path:, a relative file:// directory is beside the file, not in the working directory.
      const dir = bucket.startsWith("file://") ? bucket.slice("file://".length) : undefined;
      if (dir !== undefined && !isAbsolute(dir)) bucket = `file://${resolve(base, dir)}`;
      const s3: S3Settings = {};
      if (replica.endpoint !== undefined) {
        s3.endpoint = str(replica.endpoint, [...rat, "endpoint"], "endpoint");
      }
      if (replica.region !== undefined) {
        s3.region = str(replica.region, [...rat, "region"], "region");
      }
      const key = replica["access-key-id"];
      const secret = replica["secret-access-key"];
      if ((key === undefined) !== (secret === undefined)) {
        fail(
          rat,
          "give both access-key-id and secret-access-key, or neither (then the AWS_* environment is used)",
        );
      }
      if (key !== undefined) {
        registerSecret(String(secret));
        if (replica["session-token"] !== undefined) {
          registerSecret(String(replica["session-token"]));
        }
        s3.credentials = {
          accessKeyId: str(key, [...rat, "access-key-id"], "access-key-id"),
          secretAccessKey: str(secret, [...rat, "secret-access-key"], "secret-access-key"),
          ...(replica["session-token"] !== undefined
            ? {
              sessionToken: str(
                replica["session-token"],
                [...rat, "session-token"],
                "session-token",
              ),
            }
            : {}),
        };
      }
      if (replica.sse !== undefined) {
        const sse = str(replica.sse, [...rat, "sse"], "sse");
        if (sse !== "AES256" && sse !== "aws:kms") {
          fail([...rat, "sse"], `sse "${sse}" must be AES256 or aws:kms`);
        }
        s3.sse = sse as "AES256" | "aws:kms";
      }
      if (replica["sse-kms-key-id"] !== undefined) {
        if (s3.sse !== "aws:kms") {
          fail([...rat, "sse-kms-key-id"], "sse-kms-key-id needs sse: aws:kms");
        }
        s3.sseKmsKeyId = str(
          replica["sse-kms-key-id"],
          [...rat, "sse-kms-key-id"],
          "sse-kms-key-id",
        );
      }
      return { bucket, s3 };
    });
    const seen = names.get(name);
    if (seen !== undefined) {
      fail(
        [...at, "path"],
        `database name ${name} is used twice (also entry ${seen + 1}); set name: on one of them`,
      );
    }
    names.set(name, i);
    const checkpointBytes = db["checkpoint-size"] === undefined
      ? defaults.checkpoint
      : Number(db["checkpoint-size"]);
    if (!Number.isSafeInteger(checkpointBytes) || checkpointBytes < 4096) {
      fail([...at, "checkpoint-size"], "checkpoint-size must be a byte count of at least 4096");
    }
    const syncIntervalMs = duration(db["sync-interval"], [...at, "sync-interval"], defaults.sync);
    if (syncIntervalMs < 10) fail([...at, "sync-interval"], "sync-interval must be at least 10ms");
    return {
      path,
      name,
      syncIntervalMs,
      snapshotIntervalMs: duration(
        db["snapshot-interval"],
        [...at, "snapshot-interval"],
        defaults.snapshot,
      ),
      checkpointBytes,
      retentionMs: duration(db.retention, [...at, "retention"], defaults.retention),
      drillIntervalMs: duration(db["drill-interval"], [...at, "drill-interval"], defaults.drill),
      replicas,
    };
  });
  return {
    file,
    metricsAddr,
    maxConcurrentUploads: maxUploads,
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
      syncIntervalMs: db.syncIntervalMs,
      snapshotIntervalMs: db.snapshotIntervalMs,
      checkpointBytes: db.checkpointBytes,
      retentionMs: db.retentionMs,
      drillIntervalMs: db.drillIntervalMs,
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
