/**
 * Writer throughput under continuous backup: how much a running `walsync watch` or
 * `litestream replicate` slows one writer of small transactions, what each uploads, and how
 * much memory each takes.
 *
 * ```
 * deno run -A bench/watch_throughput.ts [--transactions 200000] [--rounds 3] [--sync-interval 1s]
 *                                       [--walsync-checkpoint-size <bytes>] [--diagnose]
 * ```
 *
 * Each round runs three configurations on fresh databases, in a rotating order: no backup,
 * walsync watching, Litestream replicating (skipped with a message when its binary is absent).
 * The writer (`watch_writer.ts throughput`, a node:sqlite subprocess) runs `transactions`
 * single-row INSERT transactions with `synchronous=NORMAL` and times its own loop. With a backup,
 * the writer starts once the tool's first snapshot is visible in the bucket. After the writer
 * ends, the benchmark waits (bounded) for the last commit to become visible ("drain": the
 * backlog the tool was behind when the writer stopped), then reads the tool's peak RSS (VmHWM)
 * and CPU time from /proc, stops it, and sums the sizes of the objects under its prefix.
 *
 * The writer also reports its stalls: transactions that took over 5 ms (a lock wait or being
 * descheduled), their count, total and the longest. `--walsync-checkpoint-size` passes
 * `--checkpoint-size` to walsync, to see how much of its cost its own checkpoints are.
 * `--diagnose` adds a fourth configuration, `walsync-noac`: walsync running and the writer's
 * `wal_autocheckpoint` off, to show how much of walsync's cost is the writer's own automatic
 * checkpoint attempts while walsync's read transaction blocks them.
 *
 * Ratios are against the no-backup runs of the same invocation. Nothing asserts on them.
 * @module
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  type BackupProcess,
  isLitestreamL0,
  listAll,
  litestreamOrSkip,
  type LtxHeader,
  machineReport,
  mb,
  median,
  mib,
  type MinioServer,
  parseLtxHeader,
  procCpuSeconds,
  procMemory,
  readRange,
  removeQuietly,
  runWriter,
  s3Client,
  sleep,
  startLitestream,
  startMinio,
  startWalsync,
  table,
  waitFor,
} from "./common.ts";

/** `walsync-noac`: walsync, with the writer's `wal_autocheckpoint` off (`--diagnose`). */
type Config = "none" | "walsync" | "litestream" | "walsync-noac";

interface Run {
  config: Config;
  round: number;
  seconds: number;
  tps: number;
  /** Writer transactions over 5 ms: count, total ms, longest ms. */
  stalls: number;
  stallMs: number;
  maxMs: number;
  /** Writer loop thread: ms on a CPU, ms waiting for one; the rest of the wall time is blocked. */
  cpuMs: number;
  runqueueMs: number;
  /** ms from the writer's last commit until it was visible in the bucket; -1 if not seen. */
  drainMs: number;
  bytes: number;
  objects: number;
  /** walsync: WAL segment bytes; litestream: L0 bytes. */
  incrementalBytes: number;
  hwmKib: number;
  cpuSeconds: number;
  dbBytes: number;
  problems: string[];
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    transactions: { type: "string", default: "200000" },
    rounds: { type: "string", default: "3" },
    "sync-interval": { type: "string", default: "1s" },
    "walsync-checkpoint-size": { type: "string" },
    diagnose: { type: "boolean", default: false },
  },
});
const transactions = Number(flags.transactions);
const rounds = Number(flags.rounds);
const syncInterval = flags["sync-interval"]!;
const walsyncArgs = flags["walsync-checkpoint-size"]
  ? ["--checkpoint-size", flags["walsync-checkpoint-size"]]
  : [];
if (!(transactions >= 1 && transactions <= 5_000_000 && rounds >= 1 && rounds <= 10)) {
  throw new Error("need 1 <= --transactions <= 5000000 and 1 <= --rounds <= 10");
}

/** `1.23 s` of a millisecond count. */
function secs(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

async function runOne(
  config: Config,
  round: number,
  minio: MinioServer,
  client: S3Client,
  litestream: string | null,
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: `watch-throughput-${config}-` });
  const db = join(dir, "tp.db");
  const prefix = `throughput/${config}-${round}`;
  const run: Run = {
    config,
    round,
    seconds: 0,
    tps: 0,
    stalls: 0,
    stallMs: 0,
    maxMs: 0,
    cpuMs: 0,
    runqueueMs: 0,
    drainMs: -1,
    bytes: 0,
    objects: 0,
    incrementalBytes: 0,
    hwmKib: 0,
    cpuSeconds: 0,
    dbBytes: 0,
    problems: [],
  };
  let backup: BackupProcess | undefined;
  try {
    await runWriter(["setup", db]);
    let snapshotTxid = 0;
    if (config === "walsync" || config === "walsync-noac") {
      backup = startWalsync(
        minio,
        [db],
        prefix,
        join(dir, "walsync.log"),
        syncInterval,
        walsyncArgs,
      );
    } else if (config === "litestream") {
      backup = await startLitestream(
        litestream!,
        minio,
        [{ path: db, replicaPath: `${prefix}/tp.db` }],
        join(dir, "litestream.yml"),
        join(dir, "litestream.log"),
        syncInterval,
      );
    }
    if (backup) {
      const b = backup;
      const key = await waitFor(`${config} initial snapshot`, 60_000, async () => {
        if (b.exited()) throw new Error(`${config} exited early:\n${b.logTail()}`);
        const objects = await listAll(client, minio.bucket, `${prefix}/`);
        return objects.find((o) =>
          config === "litestream" ? isLitestreamL0(o.key) : o.key.includes("/snapshots/")
        )?.key;
      });
      if (config !== "litestream") {
        snapshotTxid = parseInt(/snapshots\/([0-9a-f]{16})\.db$/.exec(key)![1], 16);
      }
      await sleep(1500);
    }

    const [line] = await runWriter(
      ["throughput", db, String(transactions)].concat(
        config === "walsync-noac" ? ["no-autocheckpoint"] : [],
      ),
    );
    const out = JSON.parse(line) as {
      seconds: number;
      stalls: number;
      stallMs: number;
      maxMs: number;
      cpuMs: number;
      runqueueMs: number;
      t: number;
      salt1: number;
      salt2: number;
      end: number;
    };
    run.seconds = out.seconds;
    run.tps = transactions / out.seconds;
    run.stalls = out.stalls;
    run.stallMs = out.stallMs;
    run.maxMs = out.maxMs;
    run.cpuMs = out.cpuMs;
    run.runqueueMs = out.runqueueMs;

    if (backup) {
      const b = backup;
      const headers = new Map<string, LtxHeader | null>();
      const visible = await waitFor(`${config} to ship the last commit`, 180_000, async () => {
        if (b.exited()) throw new Error(`${config} exited during the run:\n${b.logTail()}`);
        const objects = await listAll(client, minio.bucket, `${prefix}/`);
        const now = Date.now();
        for (const o of objects) {
          if (config !== "litestream") {
            const m = /\/wal\/([0-9a-f]{16})-([0-9a-f]{16})\.wal$/.exec(o.key);
            if (m && parseInt(m[2], 16) >= snapshotTxid + transactions) return now;
          } else if (isLitestreamL0(o.key)) {
            if (!headers.has(o.key)) {
              headers.set(o.key, parseLtxHeader(await readRange(client, minio.bucket, o.key, 100)));
            }
            const h = headers.get(o.key);
            if (
              h && h.walSalt1 === out.salt1 && h.walSalt2 === out.salt2 &&
              h.walOffset + h.walSize >= out.end
            ) return now;
          }
        }
        return undefined;
      }, 100).catch((err) => {
        run.problems.push((err as Error).message);
        return -1;
      });
      run.drainMs = visible < 0 ? -1 : visible - out.t;
      run.hwmKib = procMemory(b.pid).hwmKib;
      run.cpuSeconds = procCpuSeconds(b.pid);
      const code = await b.stop();
      run.problems.push(...b.problems());
      if (code !== 0) run.problems.push(`${config} exited with code ${code}:\n${b.logTail()}`);
      backup = undefined;
      const objects = await listAll(client, minio.bucket, `${prefix}/`);
      run.objects = objects.length;
      run.bytes = objects.reduce((s, o) => s + o.size, 0);
      run.incrementalBytes = objects
        .filter((o) => config === "litestream" ? isLitestreamL0(o.key) : o.key.endsWith(".wal"))
        .reduce((s, o) => s + o.size, 0);
    }
    run.dbBytes = (await Deno.stat(db)).size;
  } finally {
    if (backup) await backup.stop();
    await removeQuietly(dir);
  }
  return run;
}

async function main(): Promise<void> {
  const litestream = litestreamOrSkip();
  console.log(await machineReport(litestream));
  console.log(
    `\nwatch throughput: ${transactions} single-row INSERT transactions (synchronous=NORMAL), ` +
      `sync interval ${syncInterval}, ${rounds} round(s)` +
      (walsyncArgs.length ? `, walsync ${walsyncArgs.join(" ")}` : "") + "\n",
  );
  const configs: Config[] = litestream ? ["none", "walsync", "litestream"] : ["none", "walsync"];
  if (flags.diagnose) configs.push("walsync-noac");
  const minio = await startMinio();
  const client = s3Client(minio);
  const runs: Run[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const shift = (round - 1) % configs.length;
      const order = [...configs.slice(shift), ...configs.slice(0, shift)];
      for (const config of order) {
        const r = await runOne(config, round, minio, client, litestream);
        runs.push(r);
        const blocked = r.seconds * 1000 - r.cpuMs - r.runqueueMs;
        console.log(
          `round ${round} ${config.padEnd(10)} ${r.seconds.toFixed(3)} s ${
            r.tps.toFixed(0).padStart(6)
          } tx/s | writer cpu ${secs(r.cpuMs)} runq ${secs(r.runqueueMs)} blocked ${
            secs(blocked)
          } stalls ${r.stalls} (${secs(r.stallMs)}, max ${r.maxMs.toFixed(0)} ms)`,
        );
        if (config !== "none") {
          console.log(
            `  drain ${r.drainMs < 0 ? "not seen" : secs(r.drainMs)}, ${
              mb(r.bytes)
            } in ${r.objects} objects, VmHWM ${mib(r.hwmKib)}, backup cpu ${
              r.cpuSeconds.toFixed(2)
            } s`,
          );
        }
        for (const p of r.problems.slice(0, 10)) console.log(`  ${config} log: ${p}`);
      }
    }
  } finally {
    client.destroy();
    await minio.stop();
  }

  const base = median(runs.filter((r) => r.config === "none").map((r) => r.tps));
  console.log("\nMedians over rounds (ratio = median tx/s / median no-backup tx/s):");
  table(
    [
      "config",
      "tx/s",
      "ratio",
      "stalled",
      "per-round ratios",
      "drain",
      "uploaded",
      "WAL/L0 part",
      "objects",
      "peak RSS",
      "cpu",
    ],
    configs.map((config) => {
      const rs = runs.filter((r) => r.config === config);
      const tps = median(rs.map((r) => r.tps));
      const perRound = rs.map((r) => {
        const none = runs.find((n) => n.config === "none" && n.round === r.round)!;
        return (r.tps / none.tps).toFixed(2);
      }).join(" ");
      const backed = config !== "none";
      const drains = rs.map((r) => r.drainMs).filter((d) => d >= 0);
      return [
        config,
        tps.toFixed(0),
        (tps / base).toFixed(3),
        `${(median(rs.map((r) => r.stallMs)) / 1000).toFixed(2)} s`,
        perRound,
        backed && drains.length ? `${(median(drains) / 1000).toFixed(2)} s` : "-",
        backed ? mb(median(rs.map((r) => r.bytes))) : "-",
        backed ? mb(median(rs.map((r) => r.incrementalBytes))) : "-",
        backed ? median(rs.map((r) => r.objects)).toFixed(0) : "-",
        backed ? mib(Math.max(...rs.map((r) => r.hwmKib))) : "-",
        backed ? `${median(rs.map((r) => r.cpuSeconds)).toFixed(2)} s` : "-",
      ];
    }),
  );
  console.log("\nWhere the writer's time went (medians over rounds):");
  table(
    ["config", "wall", "on CPU", "run-queue", "blocked", "stalls >5ms", "stalled", "longest"],
    configs.map((config) => {
      const rs = runs.filter((r) => r.config === config);
      const m = (f: (r: Run) => number) => median(rs.map(f));
      return [
        config,
        secs(m((r) => r.seconds * 1000)),
        secs(m((r) => r.cpuMs)),
        secs(m((r) => r.runqueueMs)),
        secs(m((r) => r.seconds * 1000 - r.cpuMs - r.runqueueMs)),
        m((r) => r.stalls).toFixed(0),
        secs(m((r) => r.stallMs)),
        `${m((r) => r.maxMs).toFixed(0)} ms`,
      ];
    }),
  );
  const dbBytes = median(runs.map((r) => r.dbBytes));
  console.log(`\ndatabase file after the run: ${mb(dbBytes)} (median)`);
  console.log("stalled = writer time in transactions over 5 ms (median over rounds)");
  console.log("peak RSS = largest VmHWM over the rounds; cpu = utime+stime of the backup process");
  const w = median(runs.filter((r) => r.config === "walsync").map((r) => r.tps)) / base;
  console.log(`target walsync ratio >= 0.95: ${w >= 0.95 ? "met" : "MISSED"} (${w.toFixed(3)})`);
}

if (import.meta.main) await main();
