/**
 * Small tools shared by the benchmarks: statistics, formatting, timed subprocesses with their
 * peak RSS, free-disk checks and the openssl baseline. Benchmarks print ratios against a
 * baseline measured in the same run; nothing here asserts on time.
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
  let polling = !time;
  const poll = (async () => {
    while (polling) {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const kib = Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? 0);
        if (kib > polled) polled = kib;
      } catch {
        break;
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
  return { seconds, peakRssKib, cpuSeconds, stdout, stderr };
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

/** Removes a path, ignoring a missing one. */
export async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}
