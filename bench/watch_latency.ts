/**
 * Commit-to-durable latency of continuous backup at a 1 s sync interval: walsync `watch`
 * against Litestream `replicate`, both shipping to the same local MinIO.
 *
 * ```
 * deno run -A bench/watch_latency.ts [--seconds 60] [--interval-ms 200] [--rounds 2]
 *                                    [--poll-ms 50] [--sync-interval 1s] [--only walsync|litestream]
 * ```
 *
 * A writer process (`watch_writer.ts`, node:sqlite) commits one small transaction about every
 * `interval-ms` (jittered ±50 %, so commits land at every phase of the tools' 1 s loops) for
 * about `seconds` against a WAL database watched by one tool; this process lists the
 * tool's prefix every `poll-ms` (ListObjectsV2) and notes when each object first shows up (the
 * time the listing that held it came back: an upper bound, late by at most one poll period plus
 * one listing). A commit is durable when the first object holding it is visible:
 *
 * - walsync: segment `<first>-<last>.wal` holds txids first..last; the writer's commit i is txid
 *   `snapshot txid + i` (the writer starts after the generation's snapshot is visible, and
 *   nothing else writes).
 * - Litestream: every L0 LTX file (`<path>/0000/<min>-<max>.ltx`) records the WAL range it was copied from (salts, offset,
 *   size; read from its 100-byte header); the writer records the WAL salts and end offset of
 *   each commit, so commit i is in the first L0 file with the same salts whose range reaches
 *   its end. The coarser attribution "every commit made between the previous object's
 *   appearance and this one's" is printed alongside as a cross-check.
 *
 * Tools run one at a time, alternating, each on a fresh database and prefix. Figures are
 * measured in this run on this machine; nothing asserts on them.
 * @module
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  type BackupProcess,
  headMeta,
  isLitestreamL0,
  listAll,
  litestreamOrSkip,
  type LtxHeader,
  machineReport,
  median,
  type MinioServer,
  parseLtxHeader,
  percentile,
  readRange,
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

type Tool = "walsync" | "litestream";

interface Commit {
  i: number;
  t: number;
  salt1: number;
  salt2: number;
  end: number;
}

interface Seen {
  key: string;
  size: number;
  /** When the listing that first held it came back (ms since epoch). */
  at: number;
}

/** Latencies of one tool in one round. */
interface RoundResult {
  tool: Tool;
  round: number;
  commits: number;
  /** ms from commit to visible, per attributed commit (precise method). */
  latencies: number[];
  /** Litestream only: the coarse time-window attribution. */
  windowLatencies: number[];
  /** ms from commit to the object's own creation stamp (walsync-created / LTX timestamp). */
  toCreated: number[];
  /** ms from the object's creation stamp to visible. */
  createdToVisible: number[];
  objects: number;
  listMs: number[];
  notes: string[];
  problems: string[];
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "60" },
    "interval-ms": { type: "string", default: "200" },
    rounds: { type: "string", default: "2" },
    "poll-ms": { type: "string", default: "50" },
    "sync-interval": { type: "string", default: "1s" },
    only: { type: "string" },
  },
});
const seconds = Number(flags.seconds);
const intervalMs = Number(flags["interval-ms"]);
const rounds = Number(flags.rounds);
const pollMs = Number(flags["poll-ms"]);
const syncInterval = flags["sync-interval"]!;
if (!(seconds > 0 && seconds <= 600 && intervalMs >= 10 && rounds >= 1 && rounds <= 10)) {
  throw new Error("need 0 < --seconds <= 600, --interval-ms >= 10, 1 <= --rounds <= 10");
}
const commitsPerRound = Math.max(1, Math.round((seconds * 1000) / intervalMs));

/** Lists `prefix` every `pollMs` until `stop()` says so; records first sightings. */
function startPoller(client: S3Client, bucket: string, prefix: string, hardStopMs: number) {
  const seen = new Map<string, Seen>();
  const listMs: number[] = [];
  let running = true;
  const deadline = Date.now() + hardStopMs;
  const done = (async () => {
    while (running && Date.now() < deadline) {
      const started = Date.now();
      try {
        const objects = await listAll(client, bucket, prefix);
        const at = Date.now();
        listMs.push(at - started);
        for (const o of objects) {
          if (!seen.has(o.key)) seen.set(o.key, { key: o.key, size: o.size, at });
        }
      } catch (err) {
        console.error(`  poll failed: ${(err as Error).message}`);
      }
      await sleep(Math.max(0, pollMs - (Date.now() - started)));
    }
  })();
  return {
    seen,
    listMs,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Whether an L0 LTX file was copied from a WAL range that holds the commit's last frame. */
function covers(h: LtxHeader, c: Commit): boolean {
  return h.walSalt1 === c.salt1 && h.walSalt2 === c.salt2 && h.walOffset < c.end &&
    h.walOffset + h.walSize >= c.end;
}

async function runOne(
  tool: Tool,
  round: number,
  minio: MinioServer,
  client: S3Client,
  litestream: string | null,
): Promise<RoundResult> {
  const dir = await Deno.makeTempDir({ prefix: `watch-latency-${tool}-` });
  const db = join(dir, "lat.db");
  const prefix = `latency/${tool}-${round}`;
  const result: RoundResult = {
    tool,
    round,
    commits: 0,
    latencies: [],
    windowLatencies: [],
    toCreated: [],
    createdToVisible: [],
    objects: 0,
    listMs: [],
    notes: [],
    problems: [],
  };
  let backup: BackupProcess | undefined;
  try {
    await runWriter(["setup", db]);
    if (tool === "walsync") {
      backup = startWalsync(minio, [db], prefix, join(dir, "walsync.log"), syncInterval);
    } else {
      backup = await startLitestream(
        litestream!,
        minio,
        [{ path: db, replicaPath: `${prefix}/lat.db` }],
        join(dir, "litestream.yml"),
        join(dir, "litestream.log"),
        syncInterval,
      );
    }
    const b = backup;
    // The starting point: walsync's snapshot, Litestream's first L0 file.
    const startKey = await waitFor(`${tool} initial snapshot`, 60_000, async () => {
      if (b.exited()) throw new Error(`${tool} exited early:\n${b.logTail()}`);
      const objects = await listAll(client, minio.bucket, `${prefix}/`);
      const key = objects.find((o) =>
        tool === "walsync" ? o.key.includes("/snapshots/") : isLitestreamL0(o.key)
      )?.key;
      return key;
    }, 100);
    await sleep(1500); // let the first sync after start settle before the clock starts
    let snapshotTxid = 0;
    let generation = "";
    if (tool === "walsync") {
      const m = /generations\/([^/]+)\/snapshots\/([0-9a-f]{16})\.db$/.exec(startKey);
      if (!m) throw new Error(`unexpected snapshot key ${startKey}`);
      generation = m[1];
      snapshotTxid = parseInt(m[2], 16);
    }

    const poller = startPoller(
      client,
      minio.bucket,
      `${prefix}/`,
      seconds * 1000 + 120_000,
    );
    // Wait for the first listing so that objects from before the writer are "pre-existing".
    await waitFor(
      "first listing",
      10_000,
      () => Promise.resolve(poller.listMs.length ? 1 : undefined),
      10,
    );
    const preexisting = new Set(poller.seen.keys());
    const commits: Commit[] = [];
    const writer = spawnWriter(
      ["latency", db, String(commitsPerRound), String(intervalMs)],
      (line) => commits.push(JSON.parse(line)),
    );
    const writerCode = await writer.done;
    if (writerCode !== 0) throw new Error(`writer exited ${writerCode}`);
    result.commits = commits.length;
    const last = commits[commits.length - 1];

    // Keep polling until the last commit is visible (bounded), then a little more.
    const ltxHeaders = new Map<string, LtxHeader | null>();
    const lastVisible = async (): Promise<true | undefined> => {
      for (const s of [...poller.seen.values()]) {
        if (preexisting.has(s.key)) continue;
        if (tool === "walsync") {
          const m = /\/wal\/([0-9a-f]{16})-([0-9a-f]{16})\.wal$/.exec(s.key);
          if (m && parseInt(m[2], 16) >= snapshotTxid + last.i) return true;
        } else if (isLitestreamL0(s.key)) {
          if (!ltxHeaders.has(s.key)) {
            ltxHeaders.set(
              s.key,
              parseLtxHeader(await readRange(client, minio.bucket, s.key, 100)),
            );
          }
          const h = ltxHeaders.get(s.key);
          if (h && covers(h, last)) return true;
        }
      }
      return undefined;
    };
    await waitFor("last commit visible", 30_000, lastVisible, 100).catch((e) =>
      result.notes.push(String(e.message))
    );
    await sleep(300);
    await poller.stop();
    result.listMs = poller.listMs;

    const fresh = [...poller.seen.values()].filter((s) => !preexisting.has(s.key))
      .sort((a, b) => a.at - b.at);
    result.objects = fresh.length;

    if (tool === "walsync") {
      const segments = fresh.flatMap((s) => {
        const m = /generations\/([^/]+)\/wal\/([0-9a-f]{16})-([0-9a-f]{16})\.wal$/.exec(s.key);
        if (!m) {
          if (s.key.includes("/snapshots/")) {
            result.notes.push(`a new snapshot appeared during the run: ${s.key}`);
          }
          return [];
        }
        if (m[1] !== generation) result.notes.push(`segment of another generation: ${s.key}`);
        return [{ ...s, first: parseInt(m[2], 16), last: parseInt(m[3], 16) }];
      });
      const maxTxid = Math.max(snapshotTxid, ...segments.map((s) => s.last));
      if (maxTxid !== snapshotTxid + last.i) {
        result.notes.push(
          `txids do not line up: snapshot ${snapshotTxid} + ${last.i} commits, segments reach ${maxTxid}`,
        );
      }
      const created = new Map<string, number>();
      for (const s of segments) {
        const m = await headMeta(client, minio.bucket, s.key);
        const c = Date.parse(m["walsync-created"] ?? "");
        if (Number.isFinite(c)) created.set(s.key, c);
      }
      for (const c of commits) {
        const txid = snapshotTxid + c.i;
        const seg = segments.find((s) => s.first <= txid && txid <= s.last);
        if (!seg) continue;
        result.latencies.push(seg.at - c.t);
        const cr = created.get(seg.key);
        if (cr !== undefined) {
          result.toCreated.push(cr - c.t);
          result.createdToVisible.push(seg.at - cr);
        }
      }
    } else {
      const l0 = fresh.filter((s) => isLitestreamL0(s.key));
      const headers = [];
      for (const s of l0) {
        const h = ltxHeaders.get(s.key) ??
          parseLtxHeader(await readRange(client, minio.bucket, s.key, 100));
        if (h) headers.push({ ...s, h });
        else result.notes.push(`unreadable LTX header: ${s.key}`);
      }
      for (const c of commits) {
        const obj = headers.find((o) => covers(o.h, c));
        if (obj) {
          result.latencies.push(obj.at - c.t);
          result.toCreated.push(obj.h.timestamp - c.t);
          result.createdToVisible.push(obj.at - obj.h.timestamp);
        }
        // Coarse: the first L0 object seen after the commit.
        const next = l0.find((o) => o.at > c.t);
        if (next) result.windowLatencies.push(next.at - c.t);
      }
    }
    if (result.latencies.length < result.commits) {
      result.notes.push(
        `${
          result.commits - result.latencies.length
        } of ${result.commits} commits not found in any object`,
      );
    }
  } finally {
    if (backup) {
      const code = await backup.stop();
      result.problems = backup.problems();
      if (code !== 0) {
        result.problems.push(`${tool} exited with code ${code}; log tail:\n${backup.logTail()}`);
      }
    }
    await removeQuietly(dir);
  }
  return result;
}

function ms(v: number): string {
  return `${(v / 1000).toFixed(3)} s`;
}

function summary(label: string, values: number[]): (string | number)[] {
  if (values.length === 0) return [label, 0, "-", "-", "-", "-", "-"];
  return [
    label,
    values.length,
    ms(percentile(values, 50)),
    ms(percentile(values, 90)),
    ms(percentile(values, 99)),
    ms(Math.max(...values)),
    ms(values.reduce((a, b) => a + b, 0) / values.length),
  ];
}

async function main(): Promise<void> {
  const litestream = litestreamOrSkip();
  console.log(await machineReport(litestream));
  console.log(
    `\nwatch latency: ${commitsPerRound} commits about every ${intervalMs} ms (±50 %) per run, sync interval ` +
      `${syncInterval}, poll every ${pollMs} ms, ${rounds} round(s)\n`,
  );
  let tools: Tool[] = ["walsync", "litestream"];
  if (flags.only === "walsync" || flags.only === "litestream") tools = [flags.only];
  if (!litestream) tools = tools.filter((t) => t !== "litestream");

  const minio = await startMinio();
  const client = s3Client(minio);
  const results: RoundResult[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      // Alternate which tool goes first so neither always runs on a warmer machine.
      const order = round % 2 === 1 ? tools : [...tools].reverse();
      for (const tool of order) {
        console.log(`round ${round}: ${tool} ...`);
        const r = await runOne(tool, round, minio, client, litestream);
        results.push(r);
        const p = r.latencies.length
          ? `p50 ${ms(percentile(r.latencies, 50))}, p99 ${ms(percentile(r.latencies, 99))}`
          : "no latencies";
        console.log(
          `  ${r.latencies.length}/${r.commits} commits attributed, ${r.objects} objects, ${p}`,
        );
        for (const n of r.notes) console.log(`  note: ${n}`);
        for (const p of r.problems.slice(0, 10)) console.log(`  ${tool} log: ${p}`);
      }
    }
  } finally {
    client.destroy();
    await minio.stop();
  }

  console.log("\nCommit-to-durable latency (commit returned -> object listed), all rounds pooled:");
  const rows: (string | number)[][] = [];
  for (const tool of tools) {
    const rs = results.filter((r) => r.tool === tool);
    rows.push(summary(tool, rs.flatMap((r) => r.latencies)));
    if (tool === "litestream") {
      rows.push(summary("litestream (window)", rs.flatMap((r) => r.windowLatencies)));
    }
  }
  table(["tool", "commits", "p50", "p90", "p99", "max", "mean"], rows);

  console.log("\nPer round:");
  table(
    ["tool/round", "commits", "p50", "p90", "p99", "max", "mean"],
    results.map((r) => summary(`${r.tool} #${r.round}`, r.latencies)),
  );

  console.log(
    "\nWhere the time goes (medians; created = walsync-created metadata / LTX timestamp):",
  );
  table(
    ["tool", "commit->created", "created->listed", "objects/run", "list RTT p50", "list RTT p99"],
    tools.map((tool) => {
      const rs = results.filter((r) => r.tool === tool);
      const a = rs.flatMap((r) => r.toCreated);
      const b = rs.flatMap((r) => r.createdToVisible);
      const l = rs.flatMap((r) => r.listMs);
      return [
        tool,
        a.length ? ms(median(a)) : "-",
        b.length ? ms(median(b)) : "-",
        (rs.reduce((s, r) => s + r.objects, 0) / rs.length).toFixed(0),
        l.length ? `${percentile(l, 50)} ms` : "-",
        l.length ? `${percentile(l, 99)} ms` : "-",
      ];
    }),
  );

  const walsync = results.filter((r) => r.tool === "walsync").flatMap((r) => r.latencies);
  const lite = results.filter((r) => r.tool === "litestream").flatMap((r) => r.latencies);
  if (walsync.length) {
    const p99 = percentile(walsync, 99);
    console.log(
      `\ntarget walsync p99 <= 1.2 s: ${p99 <= 1200 ? "met" : "MISSED"} (${ms(p99)})`,
    );
  }
  if (walsync.length && lite.length) {
    console.log(
      `walsync / litestream: p50 ${
        (percentile(walsync, 50) / percentile(lite, 50)).toFixed(2)
      }x, p99 ${(percentile(walsync, 99) / percentile(lite, 99)).toFixed(2)}x`,
    );
  }
}

if (import.meta.main) await main();
