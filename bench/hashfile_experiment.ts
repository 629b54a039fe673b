/**
 * Experiment: why `hashFile` stays below `openssl speed`, and what would close the gap.
 * Variants of the same loop (read 1 GiB file in chunks, SHA256 every byte), interleaved:
 *
 *   deno run -A bench/hashfile_experiment.ts [--runs 3] [--size-mib 1024]
 *
 * - current: `src/hash.ts` `hashFile` (fresh 1 MiB buffer per read, one read ahead);
 * - reuse-3x1MiB: the same overlap, but reading into a ring of 3 reused buffers (no new
 *   allocation, so no page faults and no zeroing of fresh memory per chunk);
 * - reuse-3x4MiB: the same with 4 MiB buffers;
 * - reuse-2-ahead: ring of 4 buffers, two reads in flight;
 * - no-overlap: reused buffer, read then hash, one after the other (lower bound);
 * plus `openssl speed -elapsed -evp sha256` (wall clock) as the baseline of the run.
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { hashFile } from "../src/hash.ts";
import {
  max,
  median,
  MiB,
  opensslSha256,
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
  },
});
const runs = Number(values.runs);
const size = Number(values["size-mib"]) * MiB;

async function fill(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buf.length) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** Ring of `count` reused buffers with `ahead` reads in flight; hashing is synchronous. */
async function hashRing(
  path: string,
  chunk: number,
  count: number,
  ahead: number,
  fresh = false,
) {
  const file = await Deno.open(path, { read: true });
  try {
    const bufs = Array.from({ length: count }, () => new Uint8Array(chunk));
    const hash = createHash("sha256");
    let size = 0;
    let next = 0;
    const queue: Promise<[Uint8Array, number]>[] = [];
    // Reads are issued in order on one descriptor; each awaits the one before it so the
    // file position advances in order.
    let last: Promise<unknown> = Promise.resolve();
    const issue = () => {
      const buf = fresh ? new Uint8Array(chunk) : bufs[next++ % count];
      const p = last.then(() => fill(file, buf)).then((n) => [buf, n] as [Uint8Array, number]);
      last = p;
      queue.push(p);
    };
    for (let i = 0; i < ahead; i++) issue();
    for (;;) {
      const [buf, n] = await queue.shift()!;
      if (n === 0) break;
      issue();
      hash.update(buf.subarray(0, n));
      size += n;
      if (n < chunk) break;
    }
    await Promise.allSettled(queue);
    return { sha256: hash.digest("hex"), size };
  } finally {
    file.close();
  }
}

async function hashSerial(path: string, chunk: number) {
  const file = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(chunk);
    const hash = createHash("sha256");
    let size = 0;
    for (;;) {
      const n = await fill(file, buf);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
    }
    return { sha256: hash.digest("hex"), size };
  } finally {
    file.close();
  }
}

const variants: Record<string, (path: string) => Promise<{ sha256: string; size: number }>> = {
  "current hashFile": (p) => hashFile(p),
  "reuse-3x1MiB, 1 ahead": (p) => hashRing(p, MiB, 3, 1),
  "reuse-3x4MiB, 1 ahead": (p) => hashRing(p, 4 * MiB, 3, 1),
  "reuse-4x1MiB, 2 ahead": (p) => hashRing(p, MiB, 4, 2),
  "fresh 1MiB, 2 ahead": (p) => hashRing(p, MiB, 4, 2, true),
  "reuse-5x1MiB, 3 ahead": (p) => hashRing(p, MiB, 5, 3),
  "no-overlap, reused 1MiB": (p) => hashSerial(p, MiB),
};

const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-hashfile-" });
try {
  await requireFreeDisk(tmp, size + 512 * MiB);
  const file = join(tmp, "random.bin");
  await writeRandomFile(file, size);
  const expected = await hashFile(file);
  const results: Record<string, number[]> = { openssl: [] };
  for (const name of Object.keys(variants)) results[name] = [];
  for (let run = 1; run <= runs; run++) {
    results.openssl.push((await opensslSha256()).bytesPerSecond);
    for (const [name, fn] of Object.entries(variants)) {
      const t0 = performance.now();
      const got = await fn(file);
      const seconds = (performance.now() - t0) / 1000;
      if (got.sha256 !== expected.sha256 || got.size !== size) {
        throw new Error(`${name}: wrong digest`);
      }
      results[name].push(size / seconds);
    }
  }
  const base = median(results.openssl);
  table(
    ["variant", "best", "median", "median/openssl"],
    Object.entries(results).map((
      [n, v],
    ) => [n, rate(max(v)), rate(median(v)), (median(v) / base).toFixed(3)]),
  );
} finally {
  await removeQuietly(tmp);
}
