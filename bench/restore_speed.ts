/**
 * Walsync's snapshot and restore against a plain transfer of the same bytes (curl with SigV4,
 * and the AWS SDK) and against Litestream, side by side in one run, on a MinIO started by the
 * test harness: wall time, CPU, peak RSS and the ratios the issue sets targets for.
 *
 *   deno run -A bench/restore_speed.ts [--sizes 1024,4096] [--runs 1] [--ops snapshot,restore]
 *     [--no-litestream] [--no-sdk] [--litestream ~/go/bin/litestream] [--settle SECONDS]
 *
 * `--settle` waits before each measured command. On this VM that changes the result: memory a
 * deleted file freed a few seconds earlier is slower to write into (docs/benchmarks.md), and a
 * restore that starts at once reuses what the previous command's output freed.
 *
 * Per size: a database of incompressible rows (sqlite3 CLI), then in turn a plain upload
 * (curl PUT, SDK multipart), `walsync snapshot`, Litestream's first snapshot; a plain download
 * (curl GET, SDK GetObject), `walsync restore` (every digest, the chain and integrity_check),
 * `litestream restore`. Each restored file is compared with the source by `sqlite3 .sha3sum`.
 * Targets (issue 12): restore <= 2.0x curl GET, snapshot <= 2.0x curl PUT, both faster than
 * Litestream, peak RSS <= 300 MiB and flat from 1 to 4 GiB. Nothing asserts; figures print.
 * Litestream runs with `AWS_CA_BUNDLE` removed and only ever sees the loopback MinIO.
 * @module
 */
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type MinioServer, startMinio } from "../test/support/minio.ts";
import {
  createDatabase,
  findMinioPid,
  GiB,
  machine,
  mainTs,
  median,
  MiB,
  min,
  processCpuSeconds,
  removeQuietly,
  repoRoot,
  requireFreeDisk,
  rssMb,
  secs,
  sha3sum,
  table,
  type Timed,
  timed,
} from "./common.ts";
import { litestreamFirstSnapshot, litestreamRestore } from "./litestream.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "1024,4096" },
    runs: { type: "string", default: "1" },
    ops: { type: "string", default: "snapshot,restore" },
    "no-litestream": { type: "boolean", default: false },
    "no-sdk": { type: "boolean", default: false },
    litestream: {
      type: "string",
      default: join(Deno.env.get("HOME") ?? "/root", "go/bin/litestream"),
    },
    main: { type: "string" },
    settle: { type: "string", default: "0" },
  },
});
const sizes = values.sizes.split(",").map((s) => Number(s) * MiB);
const runs = Number(values.runs);
const ops = new Set(values.ops.split(","));
const walsyncMain = values.main ?? mainTs;
const settleMs = Number(values.settle) * 1000;
const useLitestream = !values["no-litestream"];
const useSdk = !values["no-sdk"];
const deno = Deno.execPath();
const plainTs = join(repoRoot, "bench", "plain_s3.ts");
// The walsync task's V8 flags (deno.json), so the CLI runs as operators run it.
const v8Flags = "--v8-flags=--max-semi-space-size=1,--optimize-for-size";

/** One measured command, with the CPU MinIO spent meanwhile. */
interface Row extends Timed {
  what: string;
  serverCpuSeconds: number;
}

async function measure(
  what: string,
  minio: MinioServer,
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; tmpDir: string },
): Promise<Row> {
  const pid = findMinioPid(minio.endpoint);
  if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
  const before = processCpuSeconds(pid);
  const t = await timed(cmd, args, options);
  return { ...t, what, serverCpuSeconds: processCpuSeconds(pid) - before };
}

function curlArgs(minio: MinioServer): string[] {
  return [
    "--fail",
    "--silent",
    "--show-error",
    "--aws-sigv4",
    "aws:amz:us-east-1:s3",
    "--user",
    `${minio.accessKey}:${minio.secretKey}`,
    // curl would otherwise hash the body to sign it; a plain transfer does not.
    "-H",
    "x-amz-content-sha256: UNSIGNED-PAYLOAD",
  ];
}

async function clearPrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  for (;;) {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
    const keys = (list.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

async function benchSize(minio: MinioServer, s3: S3Client, tmp: string, size: number) {
  const label = `${Math.round(size / MiB)} MiB`;
  const db = join(tmp, `bench-${Math.round(size / MiB)}.db`);
  const actual = await createDatabase(db, size);
  // Litestream adds its own tables to the source, so each tool's restore is compared with the
  // source as it was when that tool took its snapshot.
  let walsyncSha3 = await sha3sum(db);
  let litestreamSha3 = "";
  console.log(`\n## ${label} (${actual} bytes), load ${loadAverage()}`);
  const env = { ...minio.env, NO_COLOR: "1" };
  const rows: Row[] = [];
  const notes: string[] = [];
  const objectUrl = (key: string) => `${minio.endpoint}/${minio.bucket}/${key}`;
  const plainKey = `plain/${Math.round(size / MiB)}.db`;
  const wsBucket = `s3://${minio.bucket}/walsync-${Math.round(size / MiB)}`;
  for (let run = 1; run <= runs; run++) {
    if (ops.has("snapshot")) {
      await clearPrefix(s3, minio.bucket, `walsync-${Math.round(size / MiB)}`);
      rows.push(
        await measure("upload: curl PUT", minio, "curl", [
          ...curlArgs(minio),
          "-T",
          db,
          objectUrl(plainKey),
        ], { tmpDir: tmp }),
      );
      if (useSdk) {
        rows.push(
          await measure("upload: SDK multipart", minio, deno, [
            "run",
            "-A",
            plainTs,
            "upload",
            db,
            minio.bucket,
            `${plainKey}.sdk`,
          ], { env, tmpDir: tmp }),
        );
      }
      walsyncSha3 = await sha3sum(db);
      const snap = await measure("walsync snapshot", minio, deno, [
        "run",
        "-A",
        v8Flags,
        walsyncMain,
        "snapshot",
        db,
        "--bucket",
        wsBucket,
        "--json",
      ], { env, tmpDir: tmp });
      rows.push(snap);
      if (useLitestream) {
        const prefix = `litestream-${Math.round(size / MiB)}-${run}`;
        rows.push({
          ...(await litestreamFirstSnapshot(values.litestream, minio, db, prefix, tmp)),
          what: "litestream first snapshot",
        });
        litestreamSha3 = await sha3sum(db);
      }
    }
    if (ops.has("restore")) {
      if (!ops.has("snapshot") && run === 1) {
        await timed(deno, ["run", "-A", walsyncMain, "snapshot", db, "--bucket", wsBucket], {
          env,
          tmpDir: tmp,
        });
        await timed("curl", [...curlArgs(minio), "-T", db, objectUrl(plainKey)], { tmpDir: tmp });
      }
      const plainOut = join(tmp, "plain.out");
      rows.push(
        await measure("download: curl GET", minio, "curl", [
          ...curlArgs(minio),
          "-o",
          plainOut,
          objectUrl(plainKey),
        ], { tmpDir: tmp }),
      );
      await removeQuietly(plainOut);
      if (useSdk) {
        rows.push(
          await measure("download: SDK GetObject", minio, deno, [
            "run",
            "-A",
            plainTs,
            "download",
            minio.bucket,
            plainKey,
            plainOut,
          ], { env, tmpDir: tmp }),
        );
        await removeQuietly(plainOut);
      }
      const out = join(tmp, "walsync.out");
      const r = await measure("walsync restore", minio, deno, [
        "run",
        "-A",
        v8Flags,
        walsyncMain,
        "restore",
        `bench-${Math.round(size / MiB)}.db`,
        "--bucket",
        wsBucket,
        "-o",
        out,
        "--json",
      ], { env, tmpDir: tmp });
      rows.push(r);
      const json = JSON.parse(r.stdout);
      const same = (await sha3sum(out)) === walsyncSha3;
      notes.push(
        `run ${run}: walsync restore ${secs(r.seconds)} (curl GET ${
          secs(rows.findLast((x) => x.what === "download: curl GET")!.seconds)
        }), integrity_check ${json.integrityCheck}, retries ${json.retries}, .sha3sum ${
          same ? "identical" : "DIFFERENT"
        }`,
      );
      await removeQuietly(out);
      if (useLitestream) {
        const lsOut = join(tmp, "litestream.out");
        const prefix = `litestream-${Math.round(size / MiB)}-${run}`;
        const ls = await litestreamRestore(values.litestream, minio, db, prefix, lsOut, tmp);
        rows.push({ ...ls, what: "litestream restore" });
        notes.push(
          `run ${run}: litestream restore .sha3sum ${
            (await sha3sum(lsOut)) === litestreamSha3 ? "identical" : "DIFFERENT"
          }`,
        );
        await removeQuietly(lsOut);
      }
    }
  }
  report(label, rows, notes);
  await removeQuietly(db);
  return rows;
}

function report(label: string, rows: Row[], notes: string[]): void {
  const names = [...new Set(rows.map((r) => r.what))];
  const med = (what: string, f: (r: Row) => number) =>
    median(rows.filter((r) => r.what === what).map(f));
  const curlUp = med("upload: curl PUT", (r) => r.seconds);
  const curlDown = med("download: curl GET", (r) => r.seconds);
  table(
    ["command", "wall", "vs curl", "CPU", "MinIO CPU", "peak RSS", "peak anon"],
    names.map((what) => {
      const base = what.startsWith("download") || what.includes("restore") ? curlDown : curlUp;
      const wall = med(what, (r) => r.seconds);
      return [
        what,
        secs(wall),
        Number.isFinite(base) ? `${(wall / base).toFixed(2)}x` : "-",
        secs(med(what, (r) => r.cpuSeconds)),
        secs(med(what, (r) => r.serverCpuSeconds)),
        rssMb(Math.max(...rows.filter((r) => r.what === what).map((r) => r.peakRssKib))),
        rssMb(Math.max(...rows.filter((r) => r.what === what).map((r) => r.peakAnonKib))),
      ];
    }),
  );
  for (const note of notes) console.log(note);
  // This VM's page allocation is bimodal: the same write of 1 GiB costs 0.3 or 2.5 s of kernel
  // time from one run to the next, for curl as much as for Walsync. The ratio of the fastest
  // runs is printed beside the ratio of the medians, so one slow baseline cannot make either.
  const fastest = (what: string) => min(rows.filter((r) => r.what === what).map((r) => r.seconds));
  const ratio = (a: string, b: string) =>
    `${(med(a, (r) => r.seconds) / med(b, (r) => r.seconds)).toFixed(2)}x (fastest runs ${
      (fastest(a) / fastest(b)).toFixed(2)
    }x)`;
  if (names.includes("walsync restore")) {
    console.log(
      `${label}: restore / curl GET = ${ratio("walsync restore", "download: curl GET")}` +
        (names.includes("litestream restore")
          ? `, restore / litestream restore = ${ratio("walsync restore", "litestream restore")}`
          : ""),
    );
  }
  if (names.includes("walsync snapshot")) {
    console.log(
      `${label}: snapshot / curl PUT = ${ratio("walsync snapshot", "upload: curl PUT")}` +
        (names.includes("litestream first snapshot")
          ? `, snapshot / litestream first snapshot = ${
            ratio("walsync snapshot", "litestream first snapshot")
          }`
          : ""),
    );
  }
}

const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-restore-" });
let minio: MinioServer | undefined;
let s3: S3Client | undefined;
try {
  const biggest = Math.max(...sizes);
  await requireFreeDisk(tmp, 4 * biggest + GiB);
  console.log(`# restore / snapshot speed, ${new Date().toISOString()}`);
  console.log(`machine: ${await machine()}`);
  console.log(`walsync: ${walsyncMain}; runs per size: ${runs}; load ${loadAverage()}`);
  minio = await startMinio();
  s3 = new S3Client({
    endpoint: minio.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
  });
  const all: Row[][] = [];
  for (const size of sizes) all.push(await benchSize(minio, s3, tmp, size));
  if (sizes.length > 1) {
    console.log("\n## peak RSS (peak anonymous RSS) by size");
    for (const what of ["walsync snapshot", "walsync restore"]) {
      const peak = (rows: Row[], f: (r: Row) => number) =>
        rssMb(Math.max(0, ...rows.filter((r) => r.what === what).map(f)));
      console.log(
        `${what}: ${
          all.map((rows, i) =>
            `${Math.round(sizes[i] / MiB)} MiB ${peak(rows, (r) => r.peakRssKib)} (${
              peak(rows, (r) => r.peakAnonKib)
            })`
          ).join(", ")
        }`,
      );
    }
  }
  console.log(`\nload at the end: ${loadAverage()}`);
} finally {
  s3?.destroy();
  await minio?.stop();
  await removeQuietly(tmp);
}
