/**
 * A/B of Walsync builds: `walsync snapshot` and `walsync restore` of the same databases, run
 * in turn by each tree given (a directory holding a `main.ts`, e.g. a patched copy of the
 * repository made with `git archive HEAD | tar -x -C DIR`), against one MinIO from the test
 * harness. The first tree is the baseline the others are compared with.
 *
 *   deno run -A bench/ab_bench.ts [--runs 3] [--sizes 100,1024] [--ops snapshot,restore]
 *     TREE_A TREE_B [TREE_C ...]
 *
 * Each tree writes under its own prefix and restores its own snapshot (with `--ops restore`
 * only the restores are timed, after one untimed snapshot per tree). Runs alternate
 * between trees (A, B, C, A, B, C, ...) so drift on a shared machine hits them alike. Prints,
 * per size and tree, median wall time, client CPU, MinIO CPU and the largest peak RSS.
 * @module
 */
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startMinio } from "../test/support/minio.ts";
import {
  createDatabase,
  findMinioPid,
  machine,
  median,
  MiB,
  processCpuSeconds,
  removeQuietly,
  requireFreeDisk,
  rssMb,
  secs,
  table,
  timed,
} from "./common.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    runs: { type: "string", default: "3" },
    sizes: { type: "string", default: "100,1024" },
    ops: { type: "string", default: "snapshot,restore" },
  },
});
if (positionals.length < 2) {
  console.error("usage: ab_bench.ts [--runs 3] [--sizes 100,1024] TREE_A TREE_B [TREE_C ...]");
  Deno.exit(2);
}
const trees = positionals.map((t) => resolve(t));
const runs = Number(values.runs);
const sizes = values.sizes.split(",").map(Number);
const ops = new Set(values.ops.split(","));

interface Sample {
  wall: number;
  cpu: number;
  server: number;
  rss: number;
}

const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-ab-" });
const minio = await startMinio();
const s3 = new S3Client({
  region: "us-east-1",
  endpoint: minio.endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
});

async function clearPrefix(prefix: string): Promise<void> {
  for (;;) {
    const list = await s3.send(
      new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/` }),
    );
    const keys = (list.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await s3.send(
      new DeleteObjectsCommand({ Bucket: minio.bucket, Delete: { Objects: keys, Quiet: true } }),
    );
  }
}

try {
  const largest = Math.max(...sizes) * MiB;
  // The database, one snapshot copy, one restored file, and a snapshot per tree in MinIO.
  await requireFreeDisk(tmp, (4 + trees.length) * largest + 512 * MiB);
  console.log(`# A/B benchmark, ${new Date().toISOString()}`);
  console.log(`machine: ${await machine()}`);
  trees.forEach((t, i) => console.log(`tree ${String.fromCharCode(65 + i)}: ${t}`));
  const env = { ...minio.env, TMPDIR: tmp, NO_COLOR: "1" };
  const minioPid = findMinioPid(minio.endpoint);
  const run = async (tree: string, args: string[]): Promise<Sample> => {
    const before = processCpuSeconds(minioPid);
    const t = await timed(
      Deno.execPath(),
      ["run", "-A", "--quiet", join(tree, "main.ts"), ...args],
      { env, tmpDir: tmp },
    );
    return {
      wall: t.seconds,
      cpu: t.cpuSeconds,
      server: processCpuSeconds(minioPid) - before,
      rss: t.peakRssKib,
    };
  };

  for (const mib of sizes) {
    const name = `ab-${mib}.db`;
    const db = join(tmp, name);
    const out = join(tmp, "restored.db");
    await createDatabase(db, mib * MiB);
    const snap: Sample[][] = trees.map(() => []);
    const rest: Sample[][] = trees.map(() => []);
    const bucket = (i: number) => `s3://${minio.bucket}/tree${i}`;
    // Warm-up: one snapshot per tree (not recorded).
    for (const [i, tree] of trees.entries()) {
      await run(tree, ["snapshot", db, "--bucket", bucket(i)]);
    }
    for (let r = 0; r < runs && ops.has("snapshot"); r++) {
      for (const [i, tree] of trees.entries()) {
        await clearPrefix(`tree${i}`);
        snap[i].push(await run(tree, ["snapshot", db, "--bucket", bucket(i)]));
      }
    }
    for (let r = 0; r < runs && ops.has("restore"); r++) {
      for (const [i, tree] of trees.entries()) {
        rest[i].push(await run(tree, ["restore", basename(db), "--bucket", bucket(i), "-o", out]));
        await removeQuietly(out);
      }
    }
    for (const i of trees.keys()) await clearPrefix(`tree${i}`);
    await removeQuietly(db);

    const med = (s: Sample[], k: keyof Sample) => median(s.map((x) => x[k]));
    const rel = (v: number, base: number) => `${((v / base - 1) * 100).toFixed(0)} %`;
    console.log(`\n## ${mib} MiB database, ${runs} runs (medians; RSS: largest)\n`);
    console.log(
      `per run, wall s: ${
        trees.map((_, i) =>
          `${String.fromCharCode(65 + i)} snapshot [${
            snap[i].map((x) => x.wall.toFixed(2)).join(" ")
          }] restore [${rest[i].map((x) => x.wall.toFixed(2)).join(" ")}]`
        ).join("; ")
      }\n`,
    );
    for (const [label, data] of [["snapshot", snap], ["restore", rest]] as const) {
      if (!ops.has(label)) continue;
      table(
        [label, "wall", "vs A", "client CPU", "vs A", "MinIO CPU", "peak RSS"],
        trees.map((_, i) => [
          String.fromCharCode(65 + i),
          secs(med(data[i], "wall")),
          rel(med(data[i], "wall"), med(data[0], "wall")),
          secs(med(data[i], "cpu")),
          rel(med(data[i], "cpu"), med(data[0], "cpu")),
          secs(med(data[i], "server")),
          rssMb(Math.max(...data[i].map((x) => x.rss))),
        ]),
      );
      console.log();
    }
  }
} finally {
  s3.destroy();
  await minio.stop();
  await removeQuietly(tmp);
}
