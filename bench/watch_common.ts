/**
 * Shared parts of the watch benchmarks (`watch_latency.ts`, `watch_throughput.ts`,
 * `watch_idle_rss.ts`): MinIO and an S3 client for it, starting and stopping `walsync watch`
 * and `litestream replicate` with their logs in files, the Litestream config, the writer
 * subprocess, /proc memory readings, statistics and tables.
 *
 * Litestream is an optional comparison: its binary comes from `LITESTREAM_BIN`, then
 * `$HOME/go/bin/litestream`, then PATH; when there is none the benchmarks say so and measure
 * walsync alone. Nothing here builds or downloads it.
 * @module
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type MinioServer, startMinio } from "../test/support/minio.ts";

export { type MinioServer, startMinio };

/** Repository root (the directory holding `main.ts`). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The CLI entry point. */
export const mainTs = join(repoRoot, "main.ts");
/**
 * How `deno task walsync` runs walsync (the `walsync` task in deno.json), as the arguments
 * after `deno` with `main.ts` last: the benchmarks start walsync the way users do, with the
 * same V8 flags (`--max-semi-space-size=1,--optimize-for-size`, which `deno task compile` also
 * builds in).
 */
export const walsyncRunArgs: string[] = (() => {
  const config = JSON.parse(Deno.readTextFileSync(join(repoRoot, "deno.json")));
  const words = String(config.tasks?.walsync ?? "").trim().split(/\s+/);
  if (words[0] !== "deno" || words.at(-1) !== "main.ts") {
    throw new Error(`deno.json's walsync task is not "deno run … main.ts": ${words.join(" ")}`);
  }
  return [...words.slice(1, -1), mainTs];
})();
/** The writer subprocess script. */
export const writerTs = join(repoRoot, "bench", "watch_writer.ts");

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Finds the Litestream binary, or null (the caller prints why it skips Litestream). */
export function findLitestream(): string | null {
  const candidates: string[] = [];
  const fromEnv = Deno.env.get("LITESTREAM_BIN");
  if (fromEnv) candidates.push(fromEnv);
  const home = Deno.env.get("HOME");
  if (home) candidates.push(join(home, "go", "bin", "litestream"));
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir) candidates.push(join(dir, "litestream"));
  }
  for (const path of candidates) {
    try {
      const stat = Deno.statSync(path);
      if (stat.isFile && ((stat.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // not there
    }
  }
  return null;
}

/** `litestream version` output, or "unknown". */
export async function litestreamVersion(bin: string): Promise<string> {
  const out = await new Deno.Command(bin, { args: ["version"], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout).trim() || "unknown";
}

/** Prints the standard "Litestream skipped" line and returns the binary or null. */
export function litestreamOrSkip(): string | null {
  const bin = findLitestream();
  if (!bin) {
    console.log(
      "Litestream: SKIPPED - no litestream binary (looked at $LITESTREAM_BIN, " +
        "$HOME/go/bin/litestream, PATH); measuring walsync alone.",
    );
  }
  return bin;
}

/** An S3 client for the MinIO server (path-style, 127.0.0.1). */
export function s3Client(minio: MinioServer): S3Client {
  return new S3Client({
    endpoint: minio.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
  });
}

/** One listed object. */
export interface Listed {
  key: string;
  size: number;
}

/** Lists every object under `prefix` (at most 100 pages of 1000). */
export async function listAll(client: S3Client, bucket: string, prefix: string): Promise<Listed[]> {
  const out: Listed[] = [];
  let token: string | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of res.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
    if (!res.IsTruncated) break;
    token = res.NextContinuationToken;
  }
  return out;
}

/** Sum of object sizes and object count under `prefix`. */
export async function bytesUnder(
  client: S3Client,
  bucket: string,
  prefix: string,
): Promise<{ bytes: number; objects: number }> {
  const objects = await listAll(client, bucket, prefix);
  return { bytes: objects.reduce((s, o) => s + o.size, 0), objects: objects.length };
}

/** User metadata of an object. */
export async function headMeta(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<Record<string, string>> {
  const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return res.Metadata ?? {};
}

/** The first `length` bytes of an object. */
export async function readRange(
  client: S3Client,
  bucket: string,
  key: string,
  length: number,
): Promise<Uint8Array> {
  const res = await client.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${length - 1}` }),
  );
  return await res.Body!.transformToByteArray();
}

/** What an LTX header says about the WAL range it was copied from. */
export interface LtxHeader {
  minTxid: number;
  maxTxid: number;
  timestamp: number;
  walOffset: number;
  walSize: number;
  walSalt1: number;
  walSalt2: number;
}

/**
 * Parses the 100-byte header of a Litestream LTX file (github.com/superfly/ltx, v0.5 layout:
 * magic, flags, page size, commit, min/max txid, timestamp, pre-apply checksum, WAL offset,
 * WAL size, WAL salts; all big-endian).
 */
export function parseLtxHeader(bytes: Uint8Array): LtxHeader | null {
  if (bytes.length < 100) return null;
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic !== "LTX1") return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, 100);
  return {
    minTxid: Number(v.getBigUint64(16)),
    maxTxid: Number(v.getBigUint64(24)),
    timestamp: Number(v.getBigInt64(32)),
    walOffset: Number(v.getBigInt64(48)),
    walSize: Number(v.getBigInt64(56)),
    walSalt1: v.getUint32(64),
    walSalt2: v.getUint32(68),
  };
}

/** VmRSS and VmHWM of a process in KiB (0 when it is gone). */
export function procMemory(pid: number): { rssKib: number; hwmKib: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return {
      rssKib: Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? 0),
      hwmKib: Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? 0),
    };
  } catch {
    return { rssKib: 0, hwmKib: 0 };
  }
}

/**
 * How a process's RSS splits (KiB, from /proc/<pid>/smaps_rollup): anonymous memory (JS heap,
 * malloc, SQLite caches) against file-backed and shared mappings (the executable, libraries,
 * `-shm` files). Zeros when unavailable.
 */
export function procRssSplit(pid: number): { anonKib: number; fileKib: number } {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    const rss = Number(text.match(/^Rss:\s+(\d+) kB/m)?.[1] ?? 0);
    const anon = Number(text.match(/^Anonymous:\s+(\d+) kB/m)?.[1] ?? 0);
    return { anonKib: anon, fileKib: rss - anon };
  } catch {
    return { anonKib: 0, fileKib: 0 };
  }
}

/** utime + stime of a process in seconds (0 when it is gone). */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Counting from the state field (field 3 of proc(5)): utime is field 14, stime 15.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Open file descriptors of a process (0 when it is gone). */
export function procFds(pid: number): number {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  } catch {
    return 0;
  }
}

/** A backup process (walsync watch or litestream replicate) with its log in a file. */
export interface BackupProcess {
  name: string;
  pid: number;
  logPath: string;
  /** Whether it has exited (on its own or after stop). */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; returns the exit code. */
  stop(graceMs?: number): Promise<number>;
  /** The last `lines` lines of its log. */
  logTail(lines?: number): string;
  /** Log lines that look like warnings or errors. */
  problems(): string[];
}

function spawnLogged(
  name: string,
  cmd: string,
  args: string[],
  env: Record<string, string>,
  logPath: string,
): BackupProcess {
  const child = new Deno.Command(cmd, {
    args,
    env,
    // Only what is passed: an inherited AWS_CA_BUNDLE, AWS_PROFILE or proxy must not steer
    // either tool away from the local MinIO.
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const file = Deno.openSync(logPath, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) file.writeSync(chunk);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let done = false;
  let code = -1;
  const status = child.status.then(async (s) => {
    done = true;
    code = s.code;
    await pumps.catch(() => {});
    file.writeSync(encoder.encode(`[bench] ${name} exited with code ${s.code}\n`));
    file.close();
    return s.code;
  });
  const readLog = () => {
    try {
      return Deno.readTextFileSync(logPath);
    } catch {
      return "";
    }
  };
  return {
    name,
    pid: child.pid,
    logPath,
    exited: () => done,
    async stop(graceMs = 15_000) {
      if (done) return code;
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      try {
        return await status;
      } finally {
        clearTimeout(timer);
      }
    },
    logTail(lines = 20) {
      return readLog().trimEnd().split("\n").slice(-lines).join("\n");
    },
    problems() {
      return readLog().split("\n").filter((l) =>
        /\b(ERROR|WARN|error|panic|level=ERROR|level=WARN)\b/.test(l) &&
        !/stopping: shipping/.test(l)
      );
    },
  };
}

/** Environment for a backup process (the whole of it): PATH, HOME, TMPDIR, MinIO credentials. */
function backupEnv(minio: MinioServer): Record<string, string> {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
  };
  for (const name of ["DENO_DIR", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return {
    ...env,
    ...minio.env,
    LITESTREAM_ACCESS_KEY_ID: minio.accessKey,
    LITESTREAM_SECRET_ACCESS_KEY: minio.secretKey,
    NO_COLOR: "1",
  };
}

/** Starts `walsync watch <dbs> --bucket s3://<bucket>/<prefix> --sync-interval <interval>`. */
export function startWalsync(
  minio: MinioServer,
  dbs: string[],
  prefix: string,
  logPath: string,
  syncInterval = "1s",
  extraArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): BackupProcess {
  const env = { ...backupEnv(minio), ...extraEnv };
  return spawnLogged(
    "walsync",
    Deno.execPath(),
    [
      ...walsyncRunArgs,
      "watch",
      ...dbs,
      "--bucket",
      `s3://${minio.bucket}/${prefix}`,
      "--sync-interval",
      syncInterval,
      ...extraArgs,
    ],
    env,
    logPath,
  );
}

/**
 * A Litestream v0.5 config: each database replicated to `s3://<bucket>/<prefix>/<name>` on the
 * MinIO endpoint (path-style, 127.0.0.1), credentials from LITESTREAM_ACCESS_KEY_ID/SECRET in
 * the environment. Everything else is Litestream's default (monitor-interval 1s, L1/L2/L3
 * compaction every 30s/5m/1h, snapshots every 24h, no metrics address, no control socket, no
 * MCP server); only `sync-interval` is spelled out.
 */
export function litestreamConfig(
  minio: MinioServer,
  dbs: { path: string; replicaPath: string }[],
  syncInterval = "1s",
): string {
  const lines = ["# written by bench/watch_common.ts", "dbs:"];
  for (const db of dbs) {
    lines.push(
      `  - path: ${JSON.stringify(db.path)}`,
      "    replica:",
      "      type: s3",
      `      bucket: ${JSON.stringify(minio.bucket)}`,
      `      path: ${JSON.stringify(db.replicaPath)}`,
      `      endpoint: ${JSON.stringify(minio.endpoint)}`,
      "      region: us-east-1",
      "      force-path-style: true",
      `      sync-interval: ${syncInterval}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Writes the config and starts `litestream replicate -config <path>`. */
export async function startLitestream(
  bin: string,
  minio: MinioServer,
  dbs: { path: string; replicaPath: string }[],
  configPath: string,
  logPath: string,
  syncInterval = "1s",
): Promise<BackupProcess> {
  if (!minio.endpoint.startsWith("http://127.0.0.1:")) {
    throw new Error(`refusing to point Litestream at ${minio.endpoint}: not 127.0.0.1`);
  }
  await Deno.writeTextFile(configPath, litestreamConfig(minio, dbs, syncInterval));
  const env = backupEnv(minio);
  return spawnLogged(
    "litestream",
    bin,
    ["replicate", "-config", configPath],
    env,
    logPath,
  );
}

/** Runs the writer subprocess to completion; returns its stdout lines. */
export async function runWriter(args: string[]): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", writerTs, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(`writer ${args.join(" ")} exited ${out.code}: ${decoder.decode(out.stderr)}`);
  }
  return decoder.decode(out.stdout).split("\n").filter((l) => l.trim() !== "");
}

/** Starts the writer subprocess; lines of its stdout go to `onLine` as they come. */
export function spawnWriter(
  args: string[],
  onLine: (line: string) => void,
): { done: Promise<number>; pid: number; kill(): void } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", writerTs, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const read = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        onLine(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    }
    if (buffer.trim()) onLine(buffer);
  })();
  return {
    pid: child.pid,
    done: Promise.all([child.status, read]).then(([s]) => s.code),
    kill() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    },
  };
}

/**
 * Polls `check` every `everyMs` until it returns a value other than undefined, or throws
 * after `timeoutMs` with `what` in the message.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `12.3 MiB` of a KiB count. */
export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** `12.3 MB` of a byte count (decimal). */
export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Prints a plain text table (first column left-aligned, the rest right-aligned). */
export function table(header: string[], rows: (string | number)[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) =>
    r.map((c, i) => i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))
      .join("  ").trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

/**
 * Machine description for the report: date, nproc, CPU model, load, `free -h`, deno, the
 * walsync commit (and whether src/ differs from it), the litestream version.
 */
export async function machineReport(litestream: string | null): Promise<string> {
  const run = async (cmd: string, args: string[]) => {
    try {
      const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
      return new TextDecoder().decode(out.stdout).trim();
    } catch {
      return "(unavailable)";
    }
  };
  let model = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    model = info.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? model;
  } catch { /* not Linux */ }
  const lines = [
    `date: ${new Date().toISOString()}`,
    `nproc: ${await run("nproc", [])} (${model})`,
    `loadavg: ${(await Deno.readTextFile("/proc/loadavg").catch(() => "?")).trim()}`,
    `deno: ${Deno.version.deno}`,
    `walsync: ${await run("git", ["-C", repoRoot, "rev-parse", "--short", "HEAD"])}${
      (await run("git", ["-C", repoRoot, "status", "--porcelain", "--", "src", "main.ts"]))
        ? " (src/ has uncommitted changes)"
        : ""
    }`,
    `litestream: ${
      litestream ? `${await litestreamVersion(litestream)} (${litestream})` : "absent"
    }`,
    "free -h:",
    await run("free", ["-h"]),
  ];
  return lines.join("\n");
}

/** Removes a path, ignoring a missing one. */
export async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}

/**
 * Whether a key is a Litestream L0 LTX file: v0.5 stores `<path>/<level:4 digits>/<min>-<max>.ltx`
 * in S3 (level 0 holds one file per sync; 0001… are compactions, 0009 snapshots).
 */
export function isLitestreamL0(key: string): boolean {
  return /\/0000\/[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/.test(key);
}
