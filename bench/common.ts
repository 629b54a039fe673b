/**
 * The one helper module of the benchmarks: statistics, formatting, timed subprocesses with their
 * peak RSS, free-disk checks and the openssl baseline (snapshot and restore benchmarks); MinIO and
 * an S3 client for it, starting and stopping `walsync watch` and `litestream replicate` with their
 * logs in files, the Litestream config, the writer subprocess and /proc readings (watch
 * benchmarks). Benchmarks print ratios against a baseline measured in the same run; nothing here
 * asserts on time.
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
import { procMemory } from "../test/support/memory.ts";
import { fileSource, hashSource, sourceStream } from "../src/support/hash.ts";

/** Repository root (the directory holding `main.ts`). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Absolute path of the CLI entry point. */
export const mainTs = join(repoRoot, "main.ts");

/** Bytes in a MiB / GiB. */
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Median of a non-empty list (mean of the middle two for even lengths). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Smallest value (best time). */
export function min(values: number[]): number {
  return Math.min(...values);
}

/** Largest value (best throughput). */
export function max(values: number[]): number {
  return Math.max(...values);
}

/** `1.23 GB/s` (decimal units, as openssl reports). */
export function rate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
}

/** `12.34 s`. */
export function secs(seconds: number): string {
  return `${seconds.toFixed(2)} s`;
}

/** `123.4 MB` of a kilobyte count (as `/usr/bin/time` and /proc report, KiB). */
export function rssMb(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** `+12.3 %`. */
export function pct(ratio: number): string {
  const p = (ratio - 1) * 100;
  return `${p >= 0 ? "+" : ""}${p.toFixed(1)} %`;
}

/** Left-pads / right-pads a table cell. */
export function cell(text: string | number, width: number, right = false): string {
  const s = String(text);
  return right ? s.padStart(width) : s.padEnd(width);
}

/** Prints a plain text table with a header row. */
export function table(header: string[], rows: (string | number)[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) =>
    r.map((c, i) => cell(c, widths[i], i > 0)).join("  ").trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

/** Free bytes on the filesystem holding `path` (via `df -B1`). */
export async function freeBytes(path: string): Promise<number> {
  const out = await new Deno.Command("df", { args: ["-B1", "--output=avail", path] }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n");
  return Number(text[text.length - 1].trim());
}

/** Throws when the filesystem holding `path` has less than `needed` bytes free. */
export async function requireFreeDisk(path: string, needed: number): Promise<number> {
  const free = await freeBytes(path);
  if (!(free >= needed)) {
    throw new Error(
      `only ${(free / 1e9).toFixed(1)} GB free under ${path}; this benchmark needs ${
        (needed / 1e9).toFixed(1)
      } GB (set TMPDIR to a roomier filesystem)`,
    );
  }
  return free;
}

/** What the machine is, for the report. */
export async function machine(): Promise<string> {
  const cpus = navigator.hardwareConcurrency;
  let model = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    model = info.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? model;
  } catch { /* not Linux */ }
  const mem = Deno.systemMemoryInfo();
  return `${cpus} CPUs (${model}), ${
    (mem.total / GiB).toFixed(1)
  } GiB RAM, ${Deno.build.os}/${Deno.build.arch}, deno ${Deno.version.deno}`;
}

/** Result of a timed subprocess. */
export interface Timed {
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
  /** Peak RSS in KiB (ru_maxrss from `/usr/bin/time -v`, or VmHWM polled from /proc). */
  peakRssKib: number;
  /** User + system CPU seconds of the process (NaN without `/usr/bin/time`). */
  cpuSeconds: number;
  /**
   * Highest anonymous RSS (`RssAnon`: heap, buffers) seen by polling every 20 ms, in KiB. Peak
   * RSS also counts file pages the process maps, such as a database SQLite reads through
   * `mmap`: page cache that costs no memory of its own.
   */
  peakAnonKib: number;
  stdout: string;
  stderr: string;
}

let timeBinary: string | null | undefined;
function gnuTime(): string | null {
  if (timeBinary !== undefined) return timeBinary;
  try {
    Deno.statSync("/usr/bin/time");
    timeBinary = "/usr/bin/time";
  } catch {
    timeBinary = null;
  }
  return timeBinary;
}

/**
 * Runs a command, timing it by wall clock and reading its peak RSS. Under `/usr/bin/time -v`
 * when present (its report goes to a file, not to the command's stderr); otherwise polls
 * `VmHWM` in `/proc/<pid>/status` every 20 ms (the kernel keeps the high-water mark, so the
 * last reading before exit is the peak). Throws when the command fails.
 */
export async function timed(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; tmpDir: string },
): Promise<Timed> {
  const time = gnuTime();
  const report = join(options.tmpDir, `time-${crypto.randomUUID()}.txt`);
  const argv = time ? ["-v", "-o", report, cmd, ...args] : args;
  const started = performance.now();
  const child = new Deno.Command(time ?? cmd, {
    args: argv,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let polled = 0;
  let peakAnonKib = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      try {
        // Under /usr/bin/time the command is its child.
        const pid = time
          ? (await Deno.readTextFile(`/proc/${child.pid}/task/${child.pid}/children`)).trim()
          : String(child.pid);
        if (pid !== "") {
          const memory = procMemory(Number(pid));
          polled = Math.max(polled, memory.hwmKib);
          peakAnonKib = Math.max(peakAnonKib, memory.anonKib);
        }
      } catch {
        if (!time) break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const out = await child.output();
  const seconds = (performance.now() - started) / 1000;
  polling = false;
  await poll;
  const decoder = new TextDecoder();
  const stdout = decoder.decode(out.stdout);
  const stderr = decoder.decode(out.stderr);
  let peakRssKib = polled;
  let cpuSeconds = NaN;
  if (time) {
    const text = await Deno.readTextFile(report).catch(() => "");
    await Deno.remove(report).catch(() => {});
    peakRssKib = Number(text.match(/Maximum resident set size \(kbytes\): (\d+)/)?.[1] ?? 0);
    cpuSeconds = Number(text.match(/User time \(seconds\): ([\d.]+)/)?.[1] ?? NaN) +
      Number(text.match(/System time \(seconds\): ([\d.]+)/)?.[1] ?? NaN);
  }
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${out.code}:\n${stderr.slice(-2000)}`);
  }
  return { seconds, peakRssKib, cpuSeconds, peakAnonKib, stdout, stderr };
}

/**
 * The pid of the MinIO server listening on `endpoint` (its argv names the binary, `server`
 * and the address), found in /proc; undefined when there is none or /proc is missing.
 */
export function findMinioPid(endpoint: string): number | undefined {
  const address = new URL(endpoint).host;
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const argv = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
        if (/(^|\/)minio$/.test(argv[0]) && argv[1] === "server" && argv.includes(address)) {
          return Number(entry.name);
        }
      } catch { /* gone */ }
    }
  } catch { /* no /proc */ }
  return undefined;
}

/** User + system CPU seconds a process has used so far (from /proc/<pid>/stat; 100 ticks/s). */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * `openssl speed -evp sha256` throughput in bytes per second, with 1 MiB blocks (falls back to
 * 16 KiB blocks when the larger size is refused or its output cannot be parsed).
 * `elapsed` (the default) adds `-elapsed`: divide by wall-clock time, as the Walsync side is
 * measured. Without it openssl divides by its own user CPU time, which a busy machine does
 * not slow down.
 */
export async function opensslSha256(
  options: { seconds?: number; elapsed?: boolean } = {},
): Promise<{ bytesPerSecond: number; block: number }> {
  const seconds = options.seconds ?? 3;
  const elapsed = options.elapsed ?? true;
  for (const block of [1048576, 16384]) {
    const out = await new Deno.Command("openssl", {
      args: [
        "speed",
        "-mr",
        ...(elapsed ? ["-elapsed"] : []),
        "-seconds",
        String(seconds),
        "-evp",
        "sha256",
        "-bytes",
        String(block),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const parsed = parseOpensslSpeed(text, block);
    if (out.code === 0 && parsed !== undefined) return { bytesPerSecond: parsed, block };
  }
  throw new Error("could not run or parse `openssl speed -evp sha256`");
}

/**
 * Parses `openssl speed` output: the machine-readable `+F:<n>:sha256:<bytes/s>` line (with
 * `-mr`), else the human table line `sha256   1484138.34k` (thousands of bytes per second).
 */
export function parseOpensslSpeed(text: string, block: number): number | undefined {
  const mr = text.match(/^\+F:\d+:sha256:([\d.]+)/im);
  if (mr) return Number(mr[1]);
  const human = text.match(/^sha256\s+([\d.]+)k\s*$/im);
  if (human) return Number(human[1]) * 1000;
  // `+R:<count>:sha256:<seconds>`: blocks hashed in that time.
  const r = text.match(/^\+R:(\d+):sha256:([\d.]+)/im);
  if (r) return (Number(r[1]) * block) / Number(r[2]);
  return undefined;
}

/** Fills a file with `size` bytes of random data, written in 16 MiB slices. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const { randomFillSync } = await import("node:crypto");
  const slice = new Uint8Array(16 * MiB);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let written = 0; written < size;) {
      const n = Math.min(slice.length, size - written);
      randomFillSync(slice);
      let off = 0;
      while (off < n) off += await file.write(slice.subarray(off, n));
      written += n;
    }
  } finally {
    file.close();
  }
}

/**
 * Creates an incompressible SQLite database of about `size` bytes with the `sqlite3` CLI:
 * 4 KiB pages, one 4000-byte random blob per row (one row per page).
 */
export async function createDatabase(path: string, size: number): Promise<number> {
  const rows = Math.max(1, Math.floor(size / 4096) - Math.ceil(size / 4096 / 400));
  const sql = "PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); " +
    `INSERT INTO t(b) SELECT randomblob(4000) FROM generate_series(1, ${rows});`;
  const out = await new Deno.Command("sqlite3", { args: ["-bail", path, sql], stderr: "piped" })
    .output();
  if (out.code !== 0) {
    throw new Error(`sqlite3 failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return (await Deno.stat(path)).size;
}

/** `sqlite3 <db> .sha3sum`: a hash of a database's content, to compare a restore with its source. */
export async function sha3sum(db: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", { args: [db, ".sha3sum"], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** Removes a path, ignoring a missing one. */
export async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}

// ---------------------------------------------------------------------------------------
// The watch benchmarks: backup processes, Litestream, the writer, /proc readings.

export { type MinioServer, procMemory, startMinio };

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
  const lines = ["# written by bench/common.ts", "dbs:"];
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

/** `12.3 MiB` of a KiB count. */
export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** `12.3 MB` of a byte count (decimal). */
export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
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

/**
 * Whether a key is a Litestream L0 LTX file: v0.5 stores `<path>/<level:4 digits>/<min>-<max>.ltx`
 * in S3 (level 0 holds one file per sync; 0001… are compactions, 0009 snapshots).
 */
export function isLitestreamL0(key: string): boolean {
  return /\/0000\/[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/.test(key);
}

/** SHA256 and size of a file, taken the way Walsync's pre-pass takes them (`hashSource`). */
export async function hashPath(path: string): Promise<{ sha256: string; size: number }> {
  const source = await fileSource(path);
  try {
    return await hashSource(source);
  } finally {
    source.close();
  }
}

/** A file as the byte stream Walsync uploads (`sourceStream`); closed when the stream ends. */
export async function pathStream(path: string): Promise<ReadableStream<Uint8Array>> {
  const source = await fileSource(path);
  return sourceStream(source).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({ flush: () => source.close() }),
  );
}
