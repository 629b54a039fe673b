/**
 * `walsync snapshot` and `walsync restore` against a plain SDK upload and download of the same
 * file, on a MinIO started by the test harness, with peak RSS for two database sizes.
 *
 *   deno run -A bench/snapshot_bench.ts [--runs 3] [--big-mib 1024] [--small-mib 100] [--no-phases]
 *     [--main /path/to/other/tree/main.ts]
 *
 * Every measured command is a subprocess (`deno run -A main.ts ...` or `bench/plain_s3.ts`)
 * under `/usr/bin/time -v` (or with VmHWM polled from /proc), so start-up, wall time and peak
 * RSS count the same way for both. Runs alternate plain, walsync, plain, walsync... and the
 * medians are compared. Then, unless `--no-phases`, `phases.ts` times each step of snapshot
 * and restore in-process on the big database to show where the time goes.
 * Targets (issue): overhead <= 10 % for snapshot and restore; peak RSS of the small and big
 * database within 20 MB of each other. Nothing asserts; the figures are printed.
 * @module
 */
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { startMinio } from "../test/support/minio.ts";
import {
  createDatabase,
  findMinioPid,
  GiB,
  machine,
  mainTs,
  median,
  MiB,
  min,
  pct,
  processCpuSeconds,
  removeQuietly,
  repoRoot,
  requireFreeDisk,
  rssMb,
  secs,
  table,
  type Timed,
  timed,
} from "./common.ts";
import { runPhases } from "./phases.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    "big-mib": { type: "string", default: "1024" },
    "small-mib": { type: "string", default: "100" },
    "no-phases": { type: "boolean", default: false },
    main: { type: "string" },
  },
});
// Another tree's main.ts (a patched copy, say) to measure instead of this one's.
const walsyncMain = values.main ?? mainTs;
const runs = Number(values.runs);
const bigSize = Number(values["big-mib"]) * MiB;
const smallSize = Number(values["small-mib"]) * MiB;
const plainTs = join(repoRoot, "bench", "plain_s3.ts");
const deno = Deno.execPath();
const walsyncPrefix = "walsync";

const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-snapshot-" });
let minio: Awaited<ReturnType<typeof startMinio>> | undefined;
let s3: S3Client | undefined;

/** Deletes every object under a prefix (between runs, so the bucket holds one copy at most). */
async function clearPrefix(prefix: string): Promise<void> {
  for (;;) {
    const list = await s3!.send(
      new ListObjectsV2Command({ Bucket: minio!.bucket, Prefix: `${prefix}/` }),
    );
    const keys = (list.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await s3!.send(
      new DeleteObjectsCommand({ Bucket: minio!.bucket, Delete: { Objects: keys, Quiet: true } }),
    );
  }
}

async function removeDb(path: string): Promise<void> {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) await removeQuietly(p);
}

/** A timed subprocess and the CPU MinIO spent meanwhile. */
interface Measured extends Timed {
  serverCpuSeconds: number;
}

interface SizeResult {
  label: string;
  size: number;
  plainUp: Measured[];
  snapshot: Measured[];
  plainDown: Measured[];
  restore: Measured[];
}

try {
  // Two databases, one temp copy during snapshot, the restored file, the plain download, and
  // MinIO holding a plain and a Walsync copy of the big one, plus a margin.
  const needed = 6 * bigSize + 6 * smallSize + GiB;
  const free = await requireFreeDisk(tmp, needed);
  console.log(`# snapshot / restore benchmark, ${new Date().toISOString()}`);
  console.log(`machine: ${await machine()}`);
  console.log(
    `free disk under ${tmp}: ${(free / 1e9).toFixed(1)} GB (need ~${(needed / 1e9).toFixed(1)})`,
  );

  const dbs: { label: string; path: string; size: number }[] = [];
  for (const [label, size] of [["small", smallSize], ["big", bigSize]] as const) {
    const path = join(tmp, `bench-${label}.db`);
    const t0 = performance.now();
    const actual = await createDatabase(path, size);
    console.log(
      `created ${basename(path)}: ${(actual / MiB).toFixed(1)} MiB in ${
        secs((performance.now() - t0) / 1000)
      }`,
    );
    dbs.push({ label, path, size: actual });
  }

  minio = await startMinio();
  console.log(`MinIO at ${minio.endpoint}, bucket ${minio.bucket}`);
  console.log(`walsync: ${walsyncMain}\n`);
  s3 = new S3Client({
    region: "us-east-1",
    endpoint: minio.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
  });
  // The subprocesses' temp files (the snapshot copy) go under our temp dir too.
  const env = { ...minio.env, TMPDIR: tmp, NO_COLOR: "1" };
  const bucketUrl = `s3://${minio.bucket}/${walsyncPrefix}`;
  const opts = { env, tmpDir: tmp };
  const minioPid = findMinioPid(minio.endpoint);
  if (minioPid === undefined) console.log("(MinIO process not found: no server CPU figures)");
  const run = async (...args: string[]): Promise<Measured> => {
    const before = processCpuSeconds(minioPid);
    const t = await timed(deno, ["run", "-A", "--quiet", ...args], opts);
    return { ...t, serverCpuSeconds: processCpuSeconds(minioPid) - before };
  };
  const plainUp = (db: string) =>
    run(plainTs, "upload", db, minio!.bucket, `plain/${basename(db)}`);
  const snapshot = (db: string) =>
    run(walsyncMain, "snapshot", db, "--bucket", bucketUrl, "--json");
  const plainDown = (db: string, out: string) =>
    run(plainTs, "download", minio!.bucket, `plain/${basename(db)}`, out);
  const restore = (db: string, out: string) =>
    run(walsyncMain, "restore", basename(db), "--bucket", bucketUrl, "-o", out, "--json");
  // Warm-up (not recorded): module cache, MinIO's first writes, both code paths once.
  {
    const small = dbs[0].path;
    const out = join(tmp, "warmup.db");
    await plainUp(small);
    await snapshot(small);
    await plainDown(small, out);
    await removeDb(out);
    await restore(small, out);
    await removeDb(out);
    await clearPrefix(walsyncPrefix);
    await clearPrefix("plain");
  }

  const results: SizeResult[] = [];
  for (const db of dbs) {
    const r: SizeResult = {
      label: `${db.label} (${(db.size / MiB).toFixed(0)} MiB)`,
      size: db.size,
      plainUp: [],
      snapshot: [],
      plainDown: [],
      restore: [],
    };
    const out = join(tmp, "restored.db");
    let snapSha = "";
    for (let run = 1; run <= runs; run++) {
      await clearPrefix("plain");
      r.plainUp.push(await plainUp(db.path));
      await clearPrefix(walsyncPrefix);
      const s = await snapshot(db.path);
      snapSha = JSON.parse(s.stdout).sha256;
      r.snapshot.push(s);
      console.log(
        `${db.label} upload run ${run}: plain ${
          secs(r.plainUp.at(-1)!.seconds)
        }, walsync snapshot ${secs(s.seconds)}`,
      );
    }
    for (let run = 1; run <= runs; run++) {
      r.plainDown.push(await plainDown(db.path, out));
      const downloaded = (await Deno.stat(out)).size;
      if (downloaded !== db.size) throw new Error(`plain download wrote ${downloaded} bytes`);
      await removeDb(out);
      const res = await restore(db.path, out);
      const doc = JSON.parse(res.stdout);
      if (doc.integrityCheck !== "ok" || doc.snapshot.sha256 !== snapSha) {
        throw new Error(`restore did not verify: ${res.stdout}`);
      }
      r.restore.push(res);
      await removeDb(out);
      console.log(
        `${db.label} download run ${run}: plain ${
          secs(r.plainDown.at(-1)!.seconds)
        }, walsync restore ${secs(res.seconds)}`,
      );
    }
    results.push(r);
    await clearPrefix("plain");
  }

  const med = (t: Measured[]) => median(t.map((x) => x.seconds));
  const best = (t: Measured[]) => min(t.map((x) => x.seconds));
  const rss = (t: Measured[]) => Math.max(...t.map((x) => x.peakRssKib));
  const cpu = (t: Measured[]) => median(t.map((x) => x.cpuSeconds));
  const srv = (t: Measured[]) => median(t.map((x) => x.serverCpuSeconds));
  console.log("\n## Time (wall clock of the whole subprocess, deno start-up included)\n");
  const rows: string[][] = [];
  for (const r of results) {
    for (
      const [what, plain, ws] of [
        ["upload / snapshot", r.plainUp, r.snapshot],
        ["download / restore", r.plainDown, r.restore],
      ] as const
    ) {
      rows.push([
        `${r.label} ${what}`,
        secs(med(plain)),
        secs(med(ws)),
        secs(best(plain)),
        secs(best(ws)),
        pct(med(ws) / med(plain)),
        `${(r.size / 1e6 / med(ws)).toFixed(0)} MB/s`,
      ]);
    }
  }
  table(
    [
      "database, operation",
      "plain med",
      "walsync med",
      "plain best",
      "walsync best",
      "overhead (med)",
      "walsync rate",
    ],
    rows,
  );
  console.log("target: overhead <= +10 %");

  console.log(
    "\n## CPU seconds (medians; less sensitive to a noisy machine than wall time)\n",
  );
  const cpuRows: string[][] = [];
  for (const r of results) {
    for (
      const [what, plain, ws] of [
        ["upload / snapshot", r.plainUp, r.snapshot],
        ["download / restore", r.plainDown, r.restore],
      ] as const
    ) {
      cpuRows.push([
        `${r.label} ${what}`,
        secs(cpu(plain)),
        secs(cpu(ws)),
        secs(srv(plain)),
        secs(srv(ws)),
        pct((cpu(ws) + srv(ws)) / (cpu(plain) + srv(plain))),
      ]);
    }
  }
  table(
    [
      "database, operation",
      "plain client",
      "walsync client",
      "MinIO (plain)",
      "MinIO (walsync)",
      "total CPU overhead",
    ],
    cpuRows,
  );

  console.log("\n## Peak RSS (largest of the runs)\n");
  table(
    ["operation", ...results.map((r) => r.label), "difference"],
    [
      [
        "plain upload",
        ...results.map((r) => rssMb(rss(r.plainUp))),
        rssMb(rss(results[1].plainUp) - rss(results[0].plainUp)),
      ],
      [
        "walsync snapshot",
        ...results.map((r) => rssMb(rss(r.snapshot))),
        rssMb(rss(results[1].snapshot) - rss(results[0].snapshot)),
      ],
      [
        "plain download",
        ...results.map((r) => rssMb(rss(r.plainDown))),
        rssMb(rss(results[1].plainDown) - rss(results[0].plainDown)),
      ],
      [
        "walsync restore",
        ...results.map((r) => rssMb(rss(r.restore))),
        rssMb(rss(results[1].restore) - rss(results[0].restore)),
      ],
    ],
  );
  console.log("target: walsync snapshot and restore peak RSS of both sizes within 20 MB");

  if (!values["no-phases"]) {
    await runPhases({
      db: dbs[1].path,
      tmp,
      runs,
      bucket: minio.bucket,
      env: minio.env,
    });
  }
} finally {
  s3?.destroy();
  await minio?.stop();
  await removeQuietly(tmp);
}
