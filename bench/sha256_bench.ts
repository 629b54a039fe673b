/**
 * SHA256 streaming throughput of Walsync's hashing paths against `openssl speed -evp sha256`
 * measured on the same machine in the same run.
 *
 *   deno run -A bench/sha256_bench.ts [--runs 3] [--size-mib 1024]
 *
 * Measured, interleaved, `--runs` times each:
 * - openssl: `openssl speed -mr -elapsed -seconds 3 -evp sha256 -bytes 1048576` (the
 *   baseline, wall clock like the rest), and the same without `-elapsed` (openssl's default:
 *   bytes per second of its own CPU time) for the CPU-time comparison;
 * - hashSource: `src/support/hash.ts` `hashSource` over a `fileSource` of a temp file of random
 *   data (page cache warm: the file was just written; the pre-upload digest of a file);
 * - hashingStream: `src/support/hash.ts` `hashingStream` fed 1 MiB chunks from memory through a
 *   ReadableStream (the path of every upload and download);
 * and as references: `createHash` over the same chunks without streams, and `sourceStream` reading
 * the file without hashing.
 * Each Walsync case is timed by wall clock and by this process's CPU time (user + system,
 * all threads), so a busy machine shows up as a gap between the two tables.
 * Target (issue): Walsync path / openssl >= 0.85. Nothing here asserts; it prints ratios.
 * @module
 */
import { createHash, randomFillSync } from "node:crypto";
import cpuProcess from "node:process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { hashingStream } from "../src/support/hash.ts";
import {
  hashPath,
  machine,
  max,
  median,
  MiB,
  opensslSha256,
  pathStream,
  rate,
  removeQuietly,
  requireFreeDisk,
  table,
  writeRandomFile,
} from "./common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    "size-mib": { type: "string", default: "1024" },
    "chunk-kib": { type: "string", default: "1024" },
  },
});
const runs = Number(values.runs);
const size = Number(values["size-mib"]) * MiB;
const chunk = Number(values["chunk-kib"]) * 1024;

/** 64 MiB of distinct random chunks, cycled to make `size` bytes (more than any CPU cache). */
const poolChunks = Math.max(1, Math.floor((64 * MiB) / chunk));
const pool: Uint8Array[] = Array.from({ length: poolChunks }, () => {
  const c = new Uint8Array(chunk);
  randomFillSync(c);
  return c;
});
const chunkCount = Math.ceil(size / chunk);

function memoryStream(): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= chunkCount) {
        controller.close();
        return;
      }
      controller.enqueue(pool[i % poolChunks]);
      i++;
    },
  }, { highWaterMark: 0 });
}

/** Wall and CPU seconds of one case. */
interface Took {
  wall: number;
  cpu: number;
}

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<Took> {
  const cpu0 = cpuProcess.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuProcess.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1e6 };
}

const cases: Record<string, (file: string) => Promise<Took>> = {
  // Walsync paths.
  "hashSource over fileSource (file, src/support/hash.ts)": (file) => timeIt(() => hashPath(file)),
  "hashingStream (memory, src/support/hash.ts)": (_file) =>
    timeIt(async () => {
      const h = hashingStream();
      const reader = memoryStream().pipeThrough(h.stream).getReader();
      while (!(await reader.read()).done) { /* drain */ }
      h.digest();
    }),
  // References.
  "createHash loop (memory, no streams)": (_file) =>
    timeIt(() => {
      const h = createHash("sha256");
      for (let i = 0; i < chunkCount; i++) h.update(pool[i % poolChunks]);
      h.digest("hex");
    }),
  "sourceStream read only (no hash)": (file) =>
    timeIt(async () => {
      for await (const _ of await pathStream(file)) { /* read */ }
    }),
};

const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-sha256-" });
try {
  await requireFreeDisk(tmp, size + 512 * MiB);
  console.log(`# SHA256 benchmark, ${new Date().toISOString()}`);
  console.log(`machine: ${await machine()}`);
  console.log(`data: ${size / MiB} MiB, chunks of ${chunk / 1024} KiB, ${runs} runs each\n`);
  const file = join(tmp, "random.bin");
  await writeRandomFile(file, size);

  const wall: Record<string, number[]> = { openssl: [] };
  const cpu: Record<string, number[]> = { openssl: [] };
  for (const name of Object.keys(cases)) {
    wall[name] = [];
    cpu[name] = [];
  }
  let block = 0;
  // Warm-up: JIT, module init, page cache of the file.
  await hashPath(file);
  for (let run = 1; run <= runs; run++) {
    const ossl = await opensslSha256({ elapsed: true });
    block = ossl.block;
    wall.openssl.push(ossl.bytesPerSecond);
    cpu.openssl.push((await opensslSha256({ elapsed: false })).bytesPerSecond);
    for (const [name, fn] of Object.entries(cases)) {
      const took = await fn(file);
      wall[name].push(size / took.wall);
      cpu[name].push(size / took.cpu);
    }
    console.log(
      `run ${run} (wall clock): ` +
        Object.entries(wall).map(([n, v]) => `${n.split(" ")[0]} ${rate(v[run - 1])}`).join(", "),
    );
  }

  const report = (results: Record<string, number[]>, baseline: string) => {
    const osslBest = max(results.openssl);
    const osslMedian = median(results.openssl);
    const rows = Object.entries(results).map(([name, v]) => [
      name === "openssl" ? baseline : name,
      rate(max(v)),
      rate(median(v)),
      (max(v) / osslBest).toFixed(3),
      (median(v) / osslMedian).toFixed(3),
    ]);
    table(["path", "best", "median", "best/openssl", "median/openssl"], rows);
  };
  console.log("\n## Wall-clock throughput (the target)\n");
  report(wall, `openssl speed -elapsed -evp sha256 (${block} B blocks)`);
  console.log("\n## CPU-time throughput (bytes per CPU second; steadier on a busy machine)\n");
  report(cpu, `openssl speed -evp sha256 (${block} B blocks, user CPU)`);
  console.log("\ntarget: Walsync path (hashSource, hashingStream) / openssl >= 0.85 (wall clock)");
  for (const name of Object.keys(cases).slice(0, 2)) {
    const best = max(wall[name]) / max(wall.openssl);
    const med = median(wall[name]) / median(wall.openssl);
    console.log(
      `  ${name}: best ${best.toFixed(3)}, median ${med.toFixed(3)} -> ${
        med >= 0.85 ? "met" : best >= 0.85 ? "met at best, missed at median" : "MISSED"
      }`,
    );
  }
} finally {
  await removeQuietly(tmp);
}
