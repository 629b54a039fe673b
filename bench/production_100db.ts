/**
 * A production-like day in the life of a backup process: 100 WAL databases, each taking one
 * small commit every ~10 s, backed up continuously by `walsync watch --config` and by
 * `litestream replicate -config` side by side, under the same load, for `--minutes` minutes.
 *
 * ```
 * deno run -A bench/production_100db.ts [--minutes 10] [--dbs 100] [--commit-every 10]
 *                                       [--warmup 60] [--initial-rows 2000]
 *                                       [--walsync-env NAME=VALUE ...]
 *                                       [--walsync-v8-flags FLAGS] [--no-litestream]
 * ```
 *
 * Two identical sets of databases are created (set W for walsync, set L for Litestream). One
 * writer process (this file run as `writer`, node:sqlite) commits the same row to database i of
 * both sets at the same moment, database by database on a fixed schedule: with 100 databases
 * and `--commit-every 10` it commits every 100 ms, so each set takes 10 commits/s and each
 * database one commit every 10 s. Each tool ships to its own MinIO server (started with
 * `MINIO_PROMETHEUS_AUTH_TYPE=public`), so every S3 request a server counts
 * (`minio_s3_requests_total` by API, from `/minio/v2/metrics/cluster`) belongs to one tool.
 *
 * Timeline: both tools start together; once each has its first object for every database
 * (bounded at 5 min) the writer starts; after `--warmup` seconds the measured window opens
 * (MinIO counters and CPU time read), lasts `--minutes`, and closes with a second reading.
 * During the window each tool's VmRSS/VmHWM (/proc/<pid>/status) is sampled every 5 s; for
 * walsync the pid is the `deno` process, started as `deno task walsync` runs it (deno.json, V8
 * flags included; `walsyncRunArgs`). CPU is utime+stime from /proc/<pid>/stat divided by
 * `getconf CLK_TCK`. Requests and CPU are reported per hour of the window, RSS as the peak
 * (VmHWM since start, which includes the start-up snapshots), the peak and mean VmRSS in the
 * window, and the final VmRSS. Then the writer stops, both tools get 5 s to ship and a SIGTERM,
 * and the first database and the last one written are restored from each backup
 * (`walsync restore`, `litestream restore`) and compared with their source by `sqlite3
 * .sha3sum`, so the figures are known to come from tools that were actually backing up.
 *
 * `--walsync-env` adds to walsync's environment, e.g. `MALLOC_TRIM_THRESHOLD_=131072` as the
 * systemd unit (`scripts/walsync.service`) sets it. `--walsync-v8-flags` replaces the task's
 * `--v8-flags=` for the watch process (empty: none), and `--no-litestream` measures walsync
 * alone; both are for experiments.
 *
 * MinIO's request counters are cached for 10 s by the server; the benchmark reads each server
 * at most once per 11 s so every reading is fresh. Nothing here builds or downloads Litestream:
 * without a binary (`LITESTREAM_BIN`, `$HOME/go/bin/litestream`, PATH) it says so and measures
 * walsync alone. Every process it starts runs under a shell watchdog that stops it when this
 * process goes away, and everything is bounded in time.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  findLitestream,
  listAll,
  litestreamConfig,
  litestreamVersion,
  machineReport,
  type MinioServer,
  procMemory,
  s3Client,
  startMinio,
  table,
  walsyncRunArgs,
} from "./common.ts";

// ---------------------------------------------------------------------------------------------
// Shared helpers

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function dbName(i: number): string {
  return `db${String(i + 1).padStart(3, "0")}.db`;
}

/** A deterministic ~200-byte payload for row `seq` of database `i` (same in both sets). */
function payload(i: number, seq: number): string {
  let x = (i * 2654435761 + seq * 40503 + 1) >>> 0;
  let out = "";
  while (out.length < 200) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out += x.toString(36);
  }
  return out.slice(0, 200);
}

// ---------------------------------------------------------------------------------------------
// Writer mode: `production_100db.ts writer <seconds> <commit-every-ms> <n> <dirW> [<dirL>]`

async function writerMain(args: string[]): Promise<void> {
  const [secondsArg, everyArg, nArg, ...dirs] = args;
  const seconds = Number(secondsArg);
  const everyMs = Number(everyArg);
  const n = Number(nArg);
  if (!(seconds > 0) || !(everyMs > 0) || !(n >= 1) || dirs.length < 1) {
    throw new Error("writer <seconds> <commit-every-ms> <n> <dir...>");
  }
  const parent = Deno.ppid;
  const sets = dirs.map((dir) =>
    Array.from({ length: n }, (_, i) => {
      const db = new DatabaseSync(join(dir, dbName(i)));
      db.exec("PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;");
      return {
        db,
        insert: db.prepare("INSERT INTO events (seq, ts, payload) VALUES (?, ?, ?)"),
      };
    })
  );
  const seqs = new Array<number>(n).fill(0);
  // Continue the sequence after the rows the database was created with.
  for (let i = 0; i < n; i++) {
    const row = sets[0][i].db.prepare("SELECT max(seq) AS s FROM events").get() as { s: number };
    seqs[i] = row.s ?? 0;
  }
  let stop = false;
  const onTerm = () => (stop = true);
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onTerm);
  const tickMs = everyMs / n;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let commits = 0;
  let errors = 0;
  let maxLateMs = 0;
  let lastIndex = -1;
  let nextReport = start + 60_000;
  for (let k = 0; !stop; k++) {
    const due = start + k * tickMs;
    if (due > deadline) break;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (stop) break;
    maxLateMs = Math.max(maxLateMs, performance.now() - due);
    const i = k % n;
    const seq = seqs[i] + 1;
    const ts = Date.now();
    const body = payload(i, seq);
    let ok = true;
    for (const set of sets) {
      try {
        set[i].insert.run(seq, ts, body);
      } catch (err) {
        ok = false;
        errors++;
        console.error(`writer: ${dbName(i)}: ${err}`);
      }
    }
    if (ok) {
      seqs[i] = seq;
      commits++;
      lastIndex = i;
    }
    if (performance.now() >= nextReport) {
      nextReport += 60_000;
      console.log(JSON.stringify({ progress: true, commits, errors, maxLateMs }));
      try {
        Deno.kill(parent, "SIGCONT"); // the parent is gone: stop writing
      } catch {
        break;
      }
    }
  }
  for (const set of sets) for (const { db } of set) db.close();
  const elapsed = (performance.now() - start) / 1000;
  console.log(
    JSON.stringify({ done: true, commits, errors, maxLateMs, lastIndex, elapsedSeconds: elapsed }),
  );
}

// ---------------------------------------------------------------------------------------------
// Processes under a watchdog

/**
 * Runs "$0" "$@" in the background with its output appended to $P100_LOG, prints its pid, and
 * waits: TERM/INT are passed on to it; if this benchmark dies, it is stopped (TERM, then KILL
 * after 20 s). The exit code is appended to the log. With $P100_TMP set (the writer's watchdog),
 * a dead benchmark's temp dir is removed too, 25 s later (once the backup tools are gone).
 */
const watchdog = `
"$0" "$@" >>"$P100_LOG" 2>&1 </dev/null &
child=$!
echo "$child"
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
while kill -0 "$P100_PARENT" 2>/dev/null && kill -0 "$child" 2>/dev/null; do
  sleep 1 & wait $!
done
if kill -0 "$child" 2>/dev/null; then
  kill -TERM "$child" 2>/dev/null
  n=0
  while kill -0 "$child" 2>/dev/null && [ $n -lt 20 ]; do sleep 1 & wait $!; n=$((n+1)); done
  kill -KILL "$child" 2>/dev/null
fi
wait "$child"
echo "[bench] exit code $?" >>"$P100_LOG"
if [ -n "$P100_TMP" ] && ! kill -0 "$P100_PARENT" 2>/dev/null; then
  sleep 25 & wait $!
  rm -rf "$P100_TMP"
fi
`;

interface Proc {
  name: string;
  pid: number;
  logPath: string;
  exited(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`; resolves with the exit code from the log (or -1). */
  stop(graceMs?: number): Promise<number>;
  log(): string;
  problems(): string[];
}

const running = new Set<Proc>();
globalThis.addEventListener("unload", () => {
  for (const p of running) {
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch { /* gone */ }
  }
});

async function spawnWatched(
  name: string,
  cmd: string,
  args: string[],
  env: Record<string, string>,
  logPath: string,
  tmpToRemove = "",
): Promise<Proc> {
  await Deno.writeTextFile(logPath, "");
  const sh = new Deno.Command("sh", {
    args: ["-c", watchdog, cmd, ...args],
    env: { ...env, P100_LOG: logPath, P100_PARENT: String(Deno.pid), P100_TMP: tmpToRemove },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let done = false;
  const status = sh.status.then(() => (done = true));
  const reader = sh.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  const deadline = Date.now() + 10_000;
  while (!first.includes("\n") && Date.now() < deadline) {
    const { value, done: end } = await reader.read();
    if (end) break;
    first += value;
  }
  // Keep draining (nothing more is expected).
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  const pid = Number(first.trim());
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new Error(`${name}: no pid from the watchdog (got ${JSON.stringify(first)})`);
  }
  const readLog = () => {
    try {
      return Deno.readTextFileSync(logPath);
    } catch {
      return "";
    }
  };
  const proc: Proc = {
    name,
    pid,
    logPath,
    exited: () => done,
    async stop(graceMs = 20_000) {
      if (!done) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
        const timer = setTimeout(() => {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }, graceMs);
        await status;
        clearTimeout(timer);
      }
      running.delete(proc);
      const m = readLog().match(/\[bench\] exit code (\d+)/);
      return m ? Number(m[1]) : -1;
    },
    log: readLog,
    problems() {
      return readLog().split("\n").filter((l) =>
        /\b(ERROR|WARN|error|panic|level=ERROR|level=WARN)\b/.test(l)
      );
    },
  };
  running.add(proc);
  return proc;
}

// ---------------------------------------------------------------------------------------------
// Measurements

let clockTicks = 100;

function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state) of proc(5); utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

/** A server's `minio_s3_requests_total` by API, read at most once per 11 s (MinIO caches 10 s). */
class RequestCounter {
  #last = 0;
  constructor(readonly minio: MinioServer) {}

  async read(): Promise<{ at: number; byApi: Map<string, number> }> {
    const wait = this.#last + 11_000 - Date.now();
    if (wait > 0) await sleep(wait);
    const res = await fetch(`${this.minio.endpoint}/minio/v2/metrics/cluster`, {
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    this.#last = Date.now();
    if (!res.ok) throw new Error(`MinIO metrics: HTTP ${res.status}: ${text.slice(0, 200)}`);
    const byApi = new Map<string, number>();
    for (const line of text.split("\n")) {
      const m = line.match(/^minio_s3_requests_total\{([^}]*)\}\s+(\S+)/);
      if (!m) continue;
      const api = m[1].match(/api="([^"]+)"/)?.[1] ?? "?";
      byApi.set(api, (byApi.get(api) ?? 0) + Number(m[2]));
    }
    return { at: this.#last, byApi };
  }
}

function diffCounts(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [api, v] of b) {
    const d = v - (a.get(api) ?? 0);
    if (d) out.set(api, d);
  }
  return out;
}

function sum(m: Map<string, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

/**
 * AWS S3 Standard request prices (us-east-1, USD per 1000): PUT, COPY, POST, LIST at 0.005;
 * GET and the rest at 0.0004; DELETE free. An estimate for context only.
 */
function requestCostUsd(byApi: Map<string, number>): number {
  let usd = 0;
  for (const [api, n] of byApi) {
    if (/delete/.test(api)) continue;
    const classA = /^(put|copy|post|list|newmultipart|completemultipart|uploadpart)/.test(api) ||
      /multipart/.test(api);
    usd += (n / 1000) * (classA ? 0.005 : 0.0004);
  }
  return usd;
}

interface ToolRun {
  tool: "walsync" | "litestream";
  minio: MinioServer;
  counter: RequestCounter;
  proc?: Proc;
  dir: string;
  /** Prefix in the bucket under which each database's objects live. */
  prefix: string;
  ready: number;
  readySeconds: number;
  rss: number[];
  hwmKib: number;
  finalRssKib: number;
  cpuStart: number;
  cpuEnd: number;
  /** Wall-clock seconds between the two CPU readings. */
  cpuSeconds: number;
  cpuAtStop: number;
  windowRequests: Map<string, number>;
  windowSeconds: number;
  startupRequests: Map<string, number>;
  exitCode: number;
  problems: string[];
  objects: number;
  bytes: number;
  restores: { db: string; ok: boolean; detail: string }[];
  /** S3 requests made by the restores (both databases together). */
  restoreRequests: Map<string, number>;
}

/** `sqlite3 <path> .sha3sum [tables]`: a hash of the database's content (or of some tables). */
async function sha3(path: string, tables?: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", {
    args: [path, tables ? `.sha3sum ${tables}` : ".sha3sum"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0 || !text) {
    throw new Error(`sqlite3 .sha3sum ${path}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

function rowCount(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function runCommand(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number; out: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    const d = new TextDecoder();
    return { code: out.code, out: (d.decode(out.stdout) + d.decode(out.stderr)).trim() };
  } catch (err) {
    return { code: -1, out: String(err) };
  }
}

// ---------------------------------------------------------------------------------------------
// Main

function kib(k: number): string {
  return `${(k / 1024).toFixed(1)} MiB`;
}

function ratio(a: number, b: number): string {
  return b > 0 ? (a / b).toFixed(2) : "n/a";
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10" },
      dbs: { type: "string", default: "100" },
      "commit-every": { type: "string", default: "10" },
      warmup: { type: "string", default: "60" },
      "initial-rows": { type: "string", default: "2000" },
      "walsync-env": { type: "string", multiple: true, default: [] },
      "walsync-v8-flags": { type: "string" },
      "no-litestream": { type: "boolean", default: false },
    },
  });
  const walsyncEnv: Record<string, string> = {};
  for (const pair of flags["walsync-env"] ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`--walsync-env takes NAME=VALUE, not ${pair}`);
    walsyncEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  // --walsync-v8-flags replaces the task's --v8-flags for the watch process (experiments).
  const v8Override = flags["walsync-v8-flags"];
  const watchArgs = v8Override === undefined ? walsyncRunArgs : [
    ...walsyncRunArgs.filter((a) => !a.startsWith("--v8-flags=")).slice(0, -1),
    ...(v8Override ? [`--v8-flags=${v8Override}`] : []),
    walsyncRunArgs.at(-1)!,
  ];
  const minutes = Number(flags.minutes);
  const n = Number(flags.dbs);
  const commitEvery = Number(flags["commit-every"]);
  const warmup = Number(flags.warmup);
  const initialRows = Number(flags["initial-rows"]);
  if (
    !(minutes > 0 && minutes <= 180) || !Number.isInteger(n) || n < 1 || n > 1000 ||
    !(commitEvery > 0) || !(warmup >= 0) || !Number.isInteger(initialRows) || initialRows < 0
  ) {
    throw new Error(
      "--minutes 0..180, --dbs 1..1000, --commit-every > 0 (s), --warmup >= 0 (s), " +
        "--initial-rows >= 0",
    );
  }
  const windowMs = minutes * 60_000;
  // Everything (start-up, window, shutdown, restores) must end within this.
  const hardLimitMs = windowMs + warmup * 1000 + 20 * 60_000;
  const abort = new AbortController();
  const hardTimer = setTimeout(() => {
    console.error(`production_100db: hard time limit (${hardLimitMs / 60000} min) reached`);
    abort.abort();
  }, hardLimitMs);
  const onSignal = () => {
    console.error("production_100db: interrupted, cleaning up");
    abort.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const tck = await runCommand("getconf", ["CLK_TCK"], { PATH: "/usr/bin:/bin" }, 5000);
  clockTicks = Number(tck.out) > 0 ? Number(tck.out) : 100;

  const litestream = flags["no-litestream"] ? null : findLitestream();
  if (flags["no-litestream"]) console.log("Litestream: SKIPPED - --no-litestream");
  else if (!litestream) {
    console.log(
      "Litestream: SKIPPED - no litestream binary (looked at $LITESTREAM_BIN, " +
        "$HOME/go/bin/litestream, PATH); measuring walsync alone.",
    );
  }
  console.log(await machineReport(litestream));
  console.log(
    `\nproduction_100db: ${n} databases per tool, one commit per database every ${commitEvery} s ` +
      `(${(n / commitEvery).toFixed(1)} commits/s per set), ${initialRows} initial rows, ` +
      `warm-up ${warmup} s, window ${minutes} min, sync-interval 1s, CLK_TCK ${clockTicks}` +
      (Object.keys(walsyncEnv).length ? `, walsync env ${JSON.stringify(walsyncEnv)}` : "") +
      "\n",
  );

  const root = await Deno.makeTempDir({ prefix: "walsync-prod100-" });
  const minios: MinioServer[] = [];
  let writer: Proc | undefined;
  const runs: ToolRun[] = [];
  let writerSummary: Record<string, number> | undefined;
  let loadSummary = "";
  try {
    // Databases: set W, then a byte copy as set L.
    const dirW = join(root, "walsync-dbs");
    const dirL = join(root, "litestream-dbs");
    await Deno.mkdir(dirW);
    await Deno.mkdir(dirL);
    for (let i = 0; i < n; i++) {
      const db = new DatabaseSync(join(dirW, dbName(i)));
      db.exec(
        "PRAGMA journal_mode = WAL;" +
          "CREATE TABLE events (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, " +
          "ts INTEGER NOT NULL, payload TEXT NOT NULL);" +
          "CREATE INDEX events_ts ON events (ts);",
      );
      const insert = db.prepare("INSERT INTO events (seq, ts, payload) VALUES (?, ?, ?)");
      db.exec("BEGIN");
      const t0 = Date.UTC(2026, 0, 1);
      for (let r = 1; r <= initialRows; r++) insert.run(r, t0 + r * 1000, payload(i, r));
      db.exec("COMMIT");
      db.close(); // the last connection checkpoints and removes the -wal
      await Deno.copyFile(join(dirW, dbName(i)), join(dirL, dbName(i)));
    }
    const dbBytes = (await Deno.stat(join(dirW, dbName(0)))).size;
    console.log(`created ${n} + ${n} databases of ${(dbBytes / 1e6).toFixed(2)} MB each`);

    // Two MinIO servers with public Prometheus metrics. The harness passes its own environment
    // on top of this process's, so the variable reaches MinIO from here.
    Deno.env.set("MINIO_PROMETHEUS_AUTH_TYPE", "public");
    const tools: ("walsync" | "litestream")[] = litestream
      ? ["walsync", "litestream"]
      : ["walsync"];
    for (const tool of tools) {
      const minio = await startMinio();
      minios.push(minio);
      const run: ToolRun = {
        tool,
        minio,
        counter: new RequestCounter(minio),
        dir: tool === "walsync" ? dirW : dirL,
        prefix: tool,
        ready: 0,
        readySeconds: -1,
        rss: [],
        hwmKib: 0,
        finalRssKib: 0,
        cpuStart: 0,
        cpuEnd: 0,
        cpuSeconds: 0,
        cpuAtStop: 0,
        windowRequests: new Map(),
        windowSeconds: 0,
        startupRequests: new Map(),
        exitCode: -1,
        problems: [],
        objects: 0,
        bytes: 0,
        restores: [],
        restoreRequests: new Map(),
      };
      runs.push(run);
    }
    const baseline = new Map<ToolRun, Map<string, number>>();
    for (const run of runs) baseline.set(run, (await run.counter.read()).byApi);

    const baseEnv: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
    };
    for (const name of ["DENO_DIR", "TMPDIR"]) {
      const value = Deno.env.get(name);
      if (value) baseEnv[name] = value;
    }
    const envFor = (m: MinioServer) => ({
      ...baseEnv,
      ...m.env,
      LITESTREAM_ACCESS_KEY_ID: m.accessKey,
      LITESTREAM_SECRET_ACCESS_KEY: m.secretKey,
    });
    const dbPaths = (dir: string) => Array.from({ length: n }, (_, i) => join(dir, dbName(i)));

    // Configs, then both tools at once.
    const walsyncYml = join(root, "walsync.yml");
    const litestreamYml = join(root, "litestream.yml");
    const started = Date.now();
    for (const run of runs) {
      if (run.tool === "walsync") {
        const lines = ["# written by bench/production_100db.ts", "sync-interval: 1s", "databases:"];
        for (const path of dbPaths(dirW)) {
          lines.push(
            `  - path: ${JSON.stringify(path)}`,
            `    bucket: ${JSON.stringify(`s3://${run.minio.bucket}/${run.prefix}`)}`,
          );
        }
        await Deno.writeTextFile(walsyncYml, lines.join("\n") + "\n");
        run.proc = await spawnWatched(
          "walsync",
          Deno.execPath(),
          [...watchArgs, "watch", "--config", walsyncYml],
          { ...envFor(run.minio), ...walsyncEnv },
          join(root, "walsync.log"),
        );
      } else {
        if (!run.minio.endpoint.startsWith("http://127.0.0.1:")) {
          throw new Error(`refusing to point Litestream at ${run.minio.endpoint}`);
        }
        await Deno.writeTextFile(
          litestreamYml,
          litestreamConfig(
            run.minio,
            dbPaths(dirL).map((path, i) => ({ path, replicaPath: `${run.prefix}/${dbName(i)}` })),
            "1s",
          ),
        );
        run.proc = await spawnWatched(
          "litestream",
          litestream!,
          ["replicate", "-config", litestreamYml],
          envFor(run.minio),
          join(root, "litestream.log"),
        );
      }
    }

    // Ready: every database has its first object (walsync snapshot, Litestream L0 file).
    // These LISTs are the benchmark's own requests; they are counted and left out.
    const ownRequests = new Map<ToolRun, number>();
    await Promise.all(runs.map(async (run) => {
      const client = s3Client(run.minio);
      let own = 0;
      try {
        const deadline = Date.now() + 300_000;
        while (Date.now() < deadline && !abort.signal.aborted && !run.proc!.exited()) {
          const objects = await listAll(client, run.minio.bucket, `${run.prefix}/`);
          own += Math.max(1, Math.ceil(objects.length / 1000));
          const have = new Set(
            objects.filter((o) =>
              run.tool === "walsync"
                ? o.key.includes("/snapshots/")
                : /\/0000\/[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/.test(o.key)
            ).map((o) => o.key.slice(run.prefix.length + 1).split("/")[0]),
          );
          run.ready = have.size;
          if (have.size >= n) {
            run.readySeconds = (Date.now() - started) / 1000;
            break;
          }
          await sleep(2000, abort.signal);
        }
      } finally {
        client.destroy();
        ownRequests.set(run, own);
      }
    }));
    for (const run of runs) {
      console.log(
        `${run.tool}: ${run.ready}/${n} databases in the bucket` +
          (run.readySeconds >= 0 ? ` after ${run.readySeconds.toFixed(1)} s` : " (NOT READY)"),
      );
      if (run.proc!.exited()) {
        throw new Error(`${run.tool} exited:\n${run.proc!.log().slice(-3000)}`);
      }
    }
    if (abort.signal.aborted) throw new Error("aborted");
    if (runs.some((r) => r.readySeconds < 0)) {
      throw new Error("a tool did not back up every database within 5 min");
    }

    // The writer, for warm-up + window + a margin (it is stopped after the window).
    const writerSeconds = warmup + minutes * 60 + 120;
    writer = await spawnWatched(
      "writer",
      Deno.execPath(),
      [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "writer",
        String(writerSeconds),
        String(commitEvery * 1000),
        String(n),
        dirW,
        ...(runs.length > 1 ? [dirL] : []),
      ],
      baseEnv,
      join(root, "writer.log"),
      root,
    );
    console.log(`writer started; warm-up ${warmup} s`);
    await sleep(warmup * 1000, abort.signal);
    if (abort.signal.aborted) throw new Error("aborted");

    // Window opens.
    for (const run of runs) {
      const reading = await run.counter.read();
      run.startupRequests = diffCounts(baseline.get(run)!, reading.byApi);
      run.startupRequests.set(
        "(benchmark's own LISTs, subtracted)",
        -(ownRequests.get(run) ?? 0),
      );
      baseline.set(run, reading.byApi);
      run.windowSeconds = -reading.at;
      run.cpuStart = cpuSeconds(run.proc!.pid);
      run.cpuSeconds = -performance.now() / 1000;
    }
    console.log(`window open: ${minutes} min, sampling RSS every 5 s`);
    const windowEnd = Date.now() + windowMs;
    let lastPrint = Date.now();
    const loads: number[] = [];
    while (Date.now() < windowEnd && !abort.signal.aborted) {
      await sleep(Math.min(5000, Math.max(0, windowEnd - Date.now())), abort.signal);
      for (const run of runs) {
        const m = procMemory(run.proc!.pid);
        if (m.rssKib > 0) run.rss.push(m.rssKib);
        if (run.proc!.exited()) throw new Error(`${run.tool} exited during the window`);
      }
      loads.push(Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]));
      if (writer.exited()) throw new Error(`writer exited early:\n${writer.log().slice(-2000)}`);
      if (Date.now() - lastPrint >= 60_000) {
        lastPrint = Date.now();
        console.log(
          runs.map((r) =>
            `${r.tool} rss ${kib(r.rss.at(-1) ?? 0)} cpu ${
              (cpuSeconds(r.proc!.pid) - r.cpuStart).toFixed(1)
            } s`
          ).join("; ") + `; load ${loads.at(-1)}`,
        );
      }
    }
    if (abort.signal.aborted) throw new Error("aborted");
    loadSummary = `1-min load average during the window: mean ${
      (loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length)).toFixed(2)
    }, max ${Math.max(0, ...loads).toFixed(2)} (nproc ${navigator.hardwareConcurrency})`;

    // Window closes: CPU and RSS at once, then the request counters (fresh, >11 s apart).
    for (const run of runs) {
      run.cpuEnd = cpuSeconds(run.proc!.pid);
      run.cpuSeconds += performance.now() / 1000;
      const m = procMemory(run.proc!.pid);
      run.finalRssKib = m.rssKib;
      run.hwmKib = m.hwmKib;
    }
    for (const run of runs) {
      const reading = await run.counter.read();
      run.windowRequests = diffCounts(baseline.get(run)!, reading.byApi);
      run.windowSeconds += reading.at;
      run.windowSeconds /= 1000;
    }

    // Stop the writer, give both tools 5 s to ship, stop them.
    const writerCode = await writer.stop(30_000);
    const summaryLine = writer.log().split("\n").filter((l) => l.includes('"done"')).at(-1);
    writerSummary = summaryLine ? JSON.parse(summaryLine) : undefined;
    console.log(`writer exited ${writerCode}: ${summaryLine ?? "(no summary)"}`);
    await sleep(5000);
    await Promise.all(runs.map(async (run) => {
      run.cpuAtStop = cpuSeconds(run.proc!.pid);
      run.exitCode = await run.proc!.stop(30_000);
      run.problems = run.proc!.problems();
    }));

    // What each backup holds, then restores.
    const lastIndex = writerSummary?.lastIndex ?? n - 1;
    const check = [...new Set([0, lastIndex >= 0 ? lastIndex : n - 1])];
    for (const run of runs) {
      const client = s3Client(run.minio);
      try {
        const objects = await listAll(client, run.minio.bucket, `${run.prefix}/`);
        run.objects = objects.length;
        run.bytes = objects.reduce((s, o) => s + o.size, 0);
      } finally {
        client.destroy();
      }
      const beforeRestores = (await run.counter.read()).byApi;
      for (const i of check) {
        const source = join(run.dir, dbName(i));
        const out = join(root, `restored-${run.tool}-${dbName(i)}`);
        const t0 = performance.now();
        const r = run.tool === "walsync"
          ? await runCommand(
            Deno.execPath(),
            [...walsyncRunArgs, "restore", dbName(i), "--config", walsyncYml, "-o", out],
            envFor(run.minio),
            180_000,
          )
          : await runCommand(
            litestream!,
            ["restore", "-config", litestreamYml, "-o", out, source],
            envFor(run.minio),
            180_000,
          );
        const took = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
        if (r.code !== 0) {
          run.restores.push({
            db: dbName(i),
            ok: false,
            detail: `restore exited ${r.code}: ${r.out.slice(-500)}`,
          });
          continue;
        }
        try {
          const [a, b] = [await sha3(source), await sha3(out)];
          const rows = rowCount(out);
          run.restores.push({
            db: dbName(i),
            ok: a === b,
            detail: `restored in ${took}, ${rows} rows, sha3 ${b.slice(0, 16)}… ${
              a === b ? "matches" : `DIFFERS from source ${a.slice(0, 16)}…`
            }`,
          });
        } catch (err) {
          run.restores.push({ db: dbName(i), ok: false, detail: String(err) });
        }
      }
      run.restoreRequests = diffCounts(beforeRestores, (await run.counter.read()).byApi);
    }
    // Both sources should hold the same rows (same writer). Only the `events` table is
    // compared: Litestream adds its own bookkeeping tables to the databases it watches.
    if (runs.length > 1) {
      for (const i of check) {
        const [a, b] = [
          await sha3(join(dirW, dbName(i)), "events"),
          await sha3(join(dirL, dbName(i)), "events"),
        ];
        console.log(
          `source sets hold identical events for ${dbName(i)}: ${a === b ? "yes" : "NO"}`,
        );
      }
    }
  } finally {
    clearTimeout(hardTimer);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    if (writer) await writer.stop(10_000).catch(() => {});
    for (const run of runs) {
      if (run.proc && !run.proc.exited()) await run.proc.stop(20_000).catch(() => {});
    }
    for (const m of minios) await m.stop().catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }

  // Report.
  const perHour = (v: number, run: ToolRun) => (v / run.windowSeconds) * 3600;
  console.log(
    `\nMeasured window: ${runs.map((r) => `${r.tool} ${r.windowSeconds.toFixed(0)} s`).join(", ")}`,
  );
  console.log(loadSummary);
  if (writerSummary) {
    console.log(
      `writer: ${writerSummary.commits} commits to each set in ${
        writerSummary.elapsedSeconds?.toFixed(0)
      } s, ${writerSummary.errors} errors, worst lateness ${
        writerSummary.maxLateMs?.toFixed(0)
      } ms`,
    );
  }
  const rows: (string | number)[][] = [];
  const metric = (label: string, f: (r: ToolRun) => number, fmt: (v: number) => string) => {
    const values = runs.map(f);
    rows.push([
      label,
      ...values.map(fmt),
      ...(runs.length > 1 ? [ratio(values[0], values[1])] : []),
    ]);
  };
  metric("S3 requests / hour", (r) => perHour(sum(r.windowRequests), r), (v) => v.toFixed(0));
  metric(
    "S3 request cost / month (AWS list price)",
    (r) => perHour(requestCostUsd(r.windowRequests), r) * 730,
    (v) => `$${v.toFixed(2)}`,
  );
  const cpuPerHour = (r: ToolRun) => ((r.cpuEnd - r.cpuStart) / r.cpuSeconds) * 3600;
  metric("CPU seconds / hour", cpuPerHour, (v) => v.toFixed(1));
  metric(
    "CPU share of one core",
    (r) => (r.cpuEnd - r.cpuStart) / r.cpuSeconds,
    (v) => `${(v * 100).toFixed(2)} %`,
  );
  metric("peak RSS (VmHWM since start)", (r) => r.hwmKib, kib);
  metric("peak VmRSS in window", (r) => Math.max(0, ...r.rss), kib);
  metric(
    "mean VmRSS in window",
    (r) => r.rss.reduce((a, b) => a + b, 0) / Math.max(1, r.rss.length),
    kib,
  );
  metric("final VmRSS (window end)", (r) => r.finalRssKib, kib);
  metric("CPU seconds, start to stop (total)", (r) => r.cpuAtStop, (v) => v.toFixed(1));
  metric("objects in bucket at end", (r) => r.objects, (v) => v.toFixed(0));
  metric("bytes in bucket at end", (r) => r.bytes, (v) => `${(v / 1e6).toFixed(1)} MB`);
  console.log();
  table(
    ["", ...runs.map((r) => r.tool), ...(runs.length > 1 ? ["walsync/litestream"] : [])],
    rows,
  );

  const apis = [...new Set(runs.flatMap((r) => [...r.windowRequests.keys()]))].sort();
  console.log("\nS3 requests per hour by API (window):");
  table(
    ["api", ...runs.map((r) => r.tool)],
    apis.map((
      api,
    ) => [api, ...runs.map((r) => perHour(r.windowRequests.get(api) ?? 0, r).toFixed(0))]),
  );
  console.log("\nS3 requests during start-up (tools start to window open, incl. initial backup):");
  const startApis = [...new Set(runs.flatMap((r) => [...r.startupRequests.keys()]))].sort();
  table(
    ["api", ...runs.map((r) => r.tool)],
    [
      ...startApis.map((api) => [api, ...runs.map((r) => r.startupRequests.get(api) ?? 0)]),
      ["total", ...runs.map((r) => sum(r.startupRequests))],
    ],
  );

  console.log("\nRestore checks:");
  let allOk = true;
  for (const run of runs) {
    for (const r of run.restores) {
      allOk &&= r.ok;
      console.log(`  ${run.tool} ${r.db}: ${r.ok ? "OK" : "FAILED"} - ${r.detail}`);
    }
    if (run.restores.length === 0) allOk = false;
    console.log(
      `  ${run.tool} restores made ${sum(run.restoreRequests)} S3 requests (${
        [...run.restoreRequests].map(([api, v]) => `${api} ${v}`).join(", ")
      })`,
    );
    console.log(
      `  ${run.tool} exit code ${run.exitCode}; ${run.problems.length} warning/error log lines`,
    );
    for (const p of run.problems.slice(0, 5)) console.log(`    ${p.slice(0, 300)}`);
  }
  if (runs.length > 1) {
    const [w, l] = runs;
    const better = [
      perHour(sum(w.windowRequests), w) < perHour(sum(l.windowRequests), l),
      w.cpuEnd - w.cpuStart < l.cpuEnd - l.cpuStart,
      w.hwmKib < l.hwmKib && w.finalRssKib < l.finalRssKib,
    ];
    console.log(
      `\ntarget walsync lower on requests / CPU / RSS: ${
        better.map((b) => (b ? "met" : "MISSED")).join(" / ")
      }`,
    );
    console.log(`litestream: ${await litestreamVersion(findLitestream()!)}`);
  }
  if (!allOk) {
    console.log("RESTORE CHECK FAILED");
    Deno.exitCode = 1;
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "writer") await writerMain(Deno.args.slice(1));
  else await main();
}
