/**
 * Memory of one continuous-backup process watching many idle databases: `walsync watch` with
 * N databases against `litestream replicate` with a config listing the same N.
 *
 * ```
 * deno run -A bench/watch_idle_rss.ts [--counts 1,10,100] [--settle 10] [--sync-interval 1s]
 *                                     [--walsync-env NAME=VALUE ...]
 * ```
 *
 * Walsync runs as `deno task walsync` runs it (deno.json, V8 flags included). For each N, both
 * tools in turn (alternating which goes first) watch N fresh copies of a small
 * WAL database (one table, one row) and ship to the same local MinIO. Once every database has
 * its first snapshot in the bucket, nothing writes for `settle` seconds; then the benchmark
 * reads the process's VmRSS (and VmHWM, the peak since start, which includes the snapshot
 * burst), its CPU time during the settle, and its open file descriptors. The per-database cost
 * is the slope between the smallest and the largest N. A third process, `sqlite-floor`, opens
 * only what walsync keeps per database (three node:sqlite connections, one in a read
 * transaction) in a bare Deno: the SQLite share of walsync's memory. RSS is also split into
 * anonymous and file-backed memory (smaps_rollup). `--walsync-env` adds to walsync's
 * environment (e.g. `MALLOC_ARENA_MAX=2`; walsync sets glibc's trim and mmap thresholds
 * itself, src/support/memory.ts). Nothing asserts on the figures.
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
  machineReport,
  median,
  mib,
  type MinioServer,
  procCpuSeconds,
  procFds,
  procMemory,
  procRssSplit,
  removeQuietly,
  runWriter,
  s3Client,
  sleep,
  spawnWriter,
  startLitestream,
  startMinio,
  startWalsync,
  table,
  waitFor,
} from "./common.ts";

/** `sqlite-floor`: a Deno process holding only walsync's three connections per database. */
type Tool = "walsync" | "litestream" | "sqlite-floor";

interface Sample {
  tool: Tool;
  n: number;
  /** Seconds from start until every database had its first object in the bucket; -1 if not. */
  readySeconds: number;
  ready: number;
  rssKib: number;
  /** RSS at the first and last second of the settle. */
  rssFirstKib: number;
  rssLastKib: number;
  hwmKib: number;
  anonKib: number;
  fileKib: number;
  /** CPU seconds used during the idle settle. */
  idleCpu: number;
  fds: number;
  problems: string[];
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    counts: { type: "string", default: "1,10,100" },
    settle: { type: "string", default: "10" },
    "sync-interval": { type: "string", default: "1s" },
    "walsync-env": { type: "string", multiple: true, default: [] },
  },
});
const counts = flags.counts!.split(",").map(Number);
const settle = Number(flags.settle);
const syncInterval = flags["sync-interval"]!;
/** Extra environment for walsync, e.g. `--walsync-env MALLOC_TRIM_THRESHOLD_=131072`. */
const walsyncEnv: Record<string, string> = {};
for (const pair of flags["walsync-env"] ?? []) {
  const eq = pair.indexOf("=");
  if (eq <= 0) throw new Error(`--walsync-env takes NAME=VALUE, not ${pair}`);
  walsyncEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
}
if (!counts.every((n) => Number.isInteger(n) && n >= 1 && n <= 500) || !(settle >= 1)) {
  throw new Error("--counts takes whole numbers 1..500; --settle at least 1 (seconds)");
}

/** Waits `settle` seconds, sampling RSS once a second; the median of the last half counts. */
async function settleAndMeasure(pid: number): Promise<Partial<Sample>> {
  const cpu0 = procCpuSeconds(pid);
  const rss: number[] = [];
  for (let s = 0; s < settle; s++) {
    await sleep(1000);
    rss.push(procMemory(pid).rssKib);
  }
  return {
    rssKib: median(rss.slice(Math.floor(rss.length / 2))),
    rssFirstKib: rss[0],
    rssLastKib: rss[rss.length - 1],
    hwmKib: procMemory(pid).hwmKib,
    ...procRssSplit(pid),
    idleCpu: procCpuSeconds(pid) - cpu0,
    fds: procFds(pid),
  };
}

async function runOne(
  tool: Tool,
  n: number,
  template: string,
  minio: MinioServer,
  client: S3Client,
  litestream: string | null,
): Promise<Sample> {
  const dir = await Deno.makeTempDir({ prefix: `watch-idle-${tool}-${n}-` });
  const prefix = `idle/${tool}-${n}`;
  const dbs: string[] = [];
  for (let i = 0; i < n; i++) {
    const path = join(dir, `idle${String(i).padStart(3, "0")}.db`);
    await Deno.copyFile(template, path);
    dbs.push(path);
  }
  const sample: Sample = {
    tool,
    n,
    readySeconds: -1,
    ready: 0,
    rssKib: 0,
    rssFirstKib: 0,
    rssLastKib: 0,
    hwmKib: 0,
    anonKib: 0,
    fileKib: 0,
    idleCpu: 0,
    fds: 0,
    problems: [],
  };
  let backup: BackupProcess | undefined;
  let floor: ReturnType<typeof spawnWriter> | undefined;
  try {
    const started = Date.now();
    if (tool === "sqlite-floor") {
      let ready = false;
      floor = spawnWriter(["hold", String(settle + 120), ...dbs], (line) => {
        if (line.includes("ready")) ready = true;
      });
      await waitFor("the SQLite floor process", 60_000, () => Promise.resolve(ready || undefined));
      sample.ready = n;
      sample.readySeconds = (Date.now() - started) / 1000;
      Object.assign(sample, await settleAndMeasure(floor.pid));
      return sample;
    }
    backup = tool === "walsync"
      ? startWalsync(minio, dbs, prefix, join(dir, "walsync.log"), syncInterval, [], walsyncEnv)
      : await startLitestream(
        litestream!,
        minio,
        dbs.map((path, i) => ({
          path,
          replicaPath: `${prefix}/idle${String(i).padStart(3, "0")}.db`,
        })),
        join(dir, "litestream.yml"),
        join(dir, "litestream.log"),
        syncInterval,
      );
    // Every database has its first object (walsync snapshot / Litestream L0), bounded.
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline && !backup.exited()) {
      const objects = await listAll(client, minio.bucket, `${prefix}/`);
      const have = new Set(
        objects.filter((o) =>
          tool === "walsync" ? o.key.includes("/snapshots/") : isLitestreamL0(o.key)
        ).map((o) => o.key.slice(prefix.length + 1).split("/")[0]),
      );
      sample.ready = have.size;
      if (have.size >= n) {
        sample.readySeconds = (Date.now() - started) / 1000;
        break;
      }
      await sleep(250);
    }
    if (backup.exited()) throw new Error(`${tool} exited:\n${backup.logTail()}`);
    Object.assign(sample, await settleAndMeasure(backup.pid));
  } finally {
    if (floor) {
      floor.kill();
      await floor.done;
    }
    if (backup) {
      const code = await backup.stop();
      sample.problems = backup.problems();
      if (code !== 0) sample.problems.push(`${tool} exited with code ${code}`);
    }
    await removeQuietly(dir);
  }
  return sample;
}

async function main(): Promise<void> {
  const litestream = litestreamOrSkip();
  console.log(await machineReport(litestream));
  console.log(
    `\nwatch idle RSS: ${
      counts.join(", ")
    } idle databases, settle ${settle} s, sync interval ${syncInterval}` +
      (Object.keys(walsyncEnv).length ? `, walsync env ${JSON.stringify(walsyncEnv)}` : "") + "\n",
  );
  const tools: Tool[] = litestream ? ["walsync", "litestream"] : ["walsync"];
  const measured: Tool[] = [...tools, "sqlite-floor"];
  const work = await Deno.makeTempDir({ prefix: "watch-idle-template-" });
  const template = join(work, "template.db");
  await runWriter(["setup", template]);
  const minio = await startMinio();
  const client = s3Client(minio);
  const samples: Sample[] = [];
  try {
    for (const [k, n] of counts.entries()) {
      const order = k % 2 === 0 ? tools : [...tools].reverse();
      for (const tool of [...order, "sqlite-floor" as const]) {
        const s = await runOne(tool, n, template, minio, client, litestream);
        samples.push(s);
        console.log(
          `${tool.padEnd(12)} N=${String(n).padStart(3)}  RSS ${mib(s.rssKib)} (anon ${
            mib(s.anonKib)
          }, file/shm ${mib(s.fileKib)}; ${mib(s.rssFirstKib)} -> ${mib(s.rssLastKib)})  VmHWM ${
            mib(s.hwmKib)
          }  idle cpu ${
            s.idleCpu.toFixed(2)
          } s / ${settle} s  fds ${s.fds}  ready ${s.ready}/${n}` +
            (s.readySeconds >= 0 ? ` in ${s.readySeconds.toFixed(1)} s` : " (timed out)"),
        );
        for (const p of s.problems.slice(0, 10)) console.log(`  ${tool} log: ${p}`);
      }
    }
  } finally {
    client.destroy();
    await minio.stop();
    await removeQuietly(work);
  }

  console.log(
    "\nIdle memory (VmRSS after the settle; VmHWM = peak since start; cpu = share of one core " +
      "while idle; sqlite-floor = a Deno process holding only walsync's 3 connections per db):",
  );
  table(
    ["N", ...tools.flatMap((t) => [`${t} RSS`, `${t} HWM`, `${t} cpu`]), "sqlite-floor RSS"],
    counts.map((n) => [
      n,
      ...tools.flatMap((t) => {
        const s = samples.find((x) => x.tool === t && x.n === n)!;
        return [mib(s.rssKib), mib(s.hwmKib), `${((s.idleCpu / settle) * 100).toFixed(1)} %`];
      }),
      mib(samples.find((x) => x.tool === "sqlite-floor" && x.n === n)!.rssKib),
    ]),
  );
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  if (hi > lo) {
    console.log(`\nPer-database cost (RSS slope from N=${lo} to N=${hi}):`);
    for (const t of measured) {
      const a = samples.find((x) => x.tool === t && x.n === lo)!;
      const b = samples.find((x) => x.tool === t && x.n === hi)!;
      console.log(
        `  ${t.padEnd(12)} ${((b.rssKib - a.rssKib) / (hi - lo) / 1024).toFixed(2)} MiB/db`,
      );
    }
  }
  const w = samples.find((x) => x.tool === "walsync" && x.n === 100);
  if (w) {
    console.log(
      `target walsync < 150 MB at 100 dbs: ${w.rssKib * 1024 < 150e6 ? "met" : "MISSED"} (${
        (w.rssKib * 1024 / 1e6).toFixed(1)
      } MB)`,
    );
  }
}

if (import.meta.main) await main();
