/**
 * The writer process of the watch benchmarks (`watch_latency.ts`, `watch_throughput.ts`): one
 * node:sqlite connection to a WAL database, run as its own process so the backup tool and the
 * benchmark's poller never share its event loop.
 *
 * ```
 * deno run -A bench/watch_writer.ts setup      <db>
 * deno run -A bench/watch_writer.ts latency    <db> <commits> <interval-ms>
 * deno run -A bench/watch_writer.ts throughput <db> <transactions> [no-autocheckpoint]
 * deno run -A bench/watch_writer.ts hold       <seconds> <db...>
 * ```
 *
 * `latency` commits one small transaction about every `interval-ms` (gaps uniform in 0.5..1.5
 * times it, on a schedule fixed in advance so a slow commit does not push the later ones back)
 * and prints one JSON line per commit:
 * `{"i":1,"t":<ms since epoch after COMMIT returned>,"salt1":…,"salt2":…,"end":<WAL offset>}`.
 * `end` is the byte offset just past the commit's last frame in the `-wal` file and
 * `salt1`/`salt2` the WAL header salts it was written under, so a backup object that records
 * the WAL range it copied (Litestream's LTX header does) can be matched to the commits it holds.
 *
 * `throughput` runs `transactions` single-row INSERT transactions as fast as it can
 * (`synchronous=NORMAL`) and prints one JSON line with the time the loop took (process start-up
 * and opening excluded), its stalls (transactions over 5 ms: count, total and longest ms), the
 * loop thread's CPU time and run-queue wait (so the rest is time blocked on I/O or locks) and
 * the WAL position after the last commit. `no-autocheckpoint` sets `wal_autocheckpoint=0` on
 * the writer's connection (a diagnostic: it shows how much of a slowdown is SQLite's automatic
 * checkpoint attempts after each commit).
 *
 * `hold` opens three connections per database as walsync does (one holding a read
 * transaction) and sleeps: `watch_idle_rss.ts` measures it as the SQLite share of a watcher.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** The WAL position just past the last committed frame. */
export interface WalEnd {
  salt1: number;
  salt2: number;
  end: number;
}

/**
 * Follows the `-wal` file: finds the end of its last commit under the current header salts.
 * Frames of an older WAL generation (left past the end after a restart) carry other salts, so
 * the scan stops at them. Incremental: each call continues from where the last one stopped
 * while the salts stay the same.
 */
export class WalFollower {
  #path: string;
  #salt1 = -1;
  #salt2 = -1;
  #scanned = 32;
  #commitEnd = 32;

  constructor(dbPath: string) {
    this.#path = `${dbPath}-wal`;
  }

  /** The end of the last commit in the WAL now (reads only the frame headers it has not seen). */
  position(): WalEnd {
    let fd: number;
    try {
      fd = openSync(this.#path, "r");
    } catch {
      return { salt1: 0, salt2: 0, end: 0 };
    }
    try {
      const header = new Uint8Array(32);
      if (readSync(fd, header, 0, 32, 0) < 32) return { salt1: 0, salt2: 0, end: 0 };
      const view = new DataView(header.buffer);
      const pageSize = view.getUint32(8) === 1 ? 65536 : view.getUint32(8);
      const salt1 = view.getUint32(16);
      const salt2 = view.getUint32(20);
      if (salt1 !== this.#salt1 || salt2 !== this.#salt2) {
        this.#salt1 = salt1;
        this.#salt2 = salt2;
        this.#scanned = 32;
        this.#commitEnd = 32;
      }
      const size = fstatSync(fd).size;
      const frameSize = 24 + pageSize;
      const frameHeader = new Uint8Array(24);
      const fv = new DataView(frameHeader.buffer);
      // Bounded by the file size: at most one pass over the frames not yet seen.
      while (this.#scanned + frameSize <= size) {
        if (readSync(fd, frameHeader, 0, 24, this.#scanned) < 24) break;
        if (fv.getUint32(8) !== salt1 || fv.getUint32(12) !== salt2) break;
        this.#scanned += frameSize;
        if (fv.getUint32(4) !== 0) this.#commitEnd = this.#scanned;
      }
      return { salt1, salt2, end: this.#commitEnd };
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * This thread's time on a CPU and waiting for one (ms), from /proc/thread-self/schedstat; the
 * rest of the wall time it spent blocked (I/O, locks, sleeping). Zeros where unavailable.
 */
function schedstat(): { cpuMs: number; waitMs: number } {
  try {
    const [cpu, wait] = Deno.readTextFileSync("/proc/thread-self/schedstat").trim().split(/\s+/);
    return { cpuMs: Number(cpu) / 1e6, waitMs: Number(wait) / 1e6 };
  } catch {
    return { cpuMs: 0, waitMs: 0 };
  }
}

function open(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: 10_000 });
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  return db;
}

function print(value: unknown): void {
  console.log(JSON.stringify(value));
}

/**
 * The SQLite floor of a watcher's memory: opens what walsync keeps per database (three
 * connections, `wal_autocheckpoint=0`, one holding a read transaction), prints `ready`, then
 * sleeps `seconds` (at most 600) and exits.
 */
function hold(seconds: number, paths: string[]): void {
  if (!(seconds > 0 && seconds <= 600) || paths.length === 0) {
    throw new Error("hold needs 1..600 seconds and at least one database");
  }
  const open: DatabaseSync[] = [];
  for (const path of paths) {
    for (let j = 0; j < 3; j++) {
      const db = new DatabaseSync(path, { timeout: 2000 });
      db.exec("PRAGMA wal_autocheckpoint=0");
      db.prepare("PRAGMA journal_mode").get();
      if (j === 1) {
        db.exec("BEGIN");
        db.prepare("SELECT count(*) FROM sqlite_master").get();
      }
      open.push(db);
    }
  }
  print("ready");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);
  for (const db of open) db.close();
}

function main(args: string[]): void {
  const [mode, path] = args;
  if (mode === "hold") {
    hold(Number(args[1]), args.slice(2));
    return;
  }
  if (!path) throw new Error("usage: watch_writer.ts setup|latency|throughput <db> …");
  if (mode === "setup") {
    const db = open(path);
    db.exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, at INTEGER, v TEXT)");
    db.exec("INSERT INTO t(at, v) VALUES (0, 'setup')");
    db.close();
    return;
  }
  const db = open(path);
  if (args[3] === "no-autocheckpoint") db.exec("PRAGMA wal_autocheckpoint=0");
  const follower = new WalFollower(path);
  const insert = db.prepare("INSERT INTO t(at, v) VALUES (?, ?)");
  if (mode === "latency") {
    const commits = Number(args[2]);
    const intervalMs = Number(args[3]);
    if (!(commits > 0 && commits <= 100_000 && intervalMs >= 1)) {
      throw new Error("latency needs 1..100000 commits and an interval of at least 1 ms");
    }
    // Gaps drawn uniformly from 0.5..1.5 x the interval: a strictly periodic writer would
    // meet a periodic sync loop at the same few phases for a whole run, and the percentiles
    // would depend on that alignment rather than on the tool.
    let due = Date.now();
    for (let i = 1; i <= commits; i++) {
      due += intervalMs * (0.5 + Math.random());
      // Busy-wait only the last millisecond; sleep the rest (Atomics.wait blocks this thread).
      const sleep = due - Date.now() - 1;
      if (sleep > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, sleep);
      while (Date.now() < due) { /* at most ~1 ms */ }
      insert.run(Date.now(), `commit ${i}`);
      const t = Date.now();
      print({ i, t, ...follower.position() });
    }
  } else if (mode === "throughput") {
    const transactions = Number(args[2]);
    if (!(transactions > 0 && transactions <= 10_000_000)) {
      throw new Error("throughput needs 1..10000000 transactions");
    }
    const payload = "x".repeat(100);
    // Transactions slower than 5 ms are stalls (waiting on a lock, or descheduled): counted,
    // summed and the longest kept, to tell where the time went.
    let stalls = 0;
    let stallMs = 0;
    let maxMs = 0;
    const sched0 = schedstat();
    const started = performance.now();
    let before = started;
    for (let i = 0; i < transactions; i++) {
      insert.run(i, payload);
      const now = performance.now();
      const took = now - before;
      before = now;
      if (took > 5) {
        stalls++;
        stallMs += took;
      }
      if (took > maxMs) maxMs = took;
    }
    const seconds = (performance.now() - started) / 1000;
    const sched1 = schedstat();
    print({
      transactions,
      seconds,
      stalls,
      stallMs,
      maxMs,
      cpuMs: sched1.cpuMs - sched0.cpuMs,
      runqueueMs: sched1.waitMs - sched0.waitMs,
      t: Date.now(),
      ...follower.position(),
    });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  db.close();
}

if (import.meta.main) main(Deno.args);
