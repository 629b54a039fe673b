/**
 * Experiment: why a Walsync restore downloads slower than a plain SDK download, and what
 * would close the gap. One random object on a MinIO from the test harness; each variant runs
 * as its own subprocess (so its peak RSS is its own), interleaved, `--runs` times:
 *
 *   deno run -A bench/download_experiment.ts [--runs 3] [--size-mib 1024]
 *
 * - walsync: `readObject` (web streams, SHA256 + size guard) and one `write` per 64 KiB
 *   chunk, as `applyPlan` does (without fsync and integrity_check);
 * - web-nohash: `transformToWebStream()` and one `write` per chunk, no hash;
 * - node-nohash: Node `pipeline(Body, createWriteStream)`, the plain baseline;
 * - node-hash: the same with a Transform that feeds `createHash` (proposal: verify in the
 *   Node stream the SDK already returns, skip the web-stream conversion);
 * - walsync-coalesce: `readObject`, chunks gathered into 1 MiB before each `write`;
 * - iter-hash: `for await` over the Node `Body` with `hash.update` and one `write` per chunk.
 * @module
 */
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { startMinio } from "../test/support/minio.ts";
import { hashFile } from "../src/hash.ts";
import { fileStream } from "../src/hash.ts";
import { meta } from "../src/layout.ts";
import { readObject } from "../src/object.ts";
import { s3Storage } from "../src/storage_s3.ts";
import {
  median,
  MiB,
  min,
  removeQuietly,
  requireFreeDisk,
  rssMb,
  secs,
  table,
  type Timed,
  timed,
  writeRandomFile,
} from "./common.ts";
import { writeCoalesced } from "./proposals.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    "size-mib": { type: "string", default: "1024" },
    variant: { type: "string" },
    bucket: { type: "string" },
    output: { type: "string" },
  },
});

const key = "object.bin";

function client(): S3Client {
  return new S3Client({
    region: Deno.env.get("AWS_REGION") ?? "us-east-1",
    endpoint: Deno.env.get("AWS_ENDPOINT_URL_S3"),
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      httpAgent: { keepAlive: true, maxSockets: 16 },
      httpsAgent: { keepAlive: true, maxSockets: 16 },
    },
  });
}

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.byteLength) written += await file.write(chunk.subarray(written));
}

async function getBody(bucket: string): Promise<Readable> {
  const s3 = client();
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `exp/${key}` }));
  return out.Body as Readable;
}

const variants: Record<string, (bucket: string, output: string) => Promise<void>> = {
  async walsync(bucket, output) {
    const storage = s3Storage({ bucket, prefix: "exp" });
    const read = await readObject(storage, key);
    const file = await Deno.open(output, { write: true, createNew: true });
    for await (const chunk of read.body) await writeAll(file, chunk);
    read.finish();
    file.close();
    storage.close();
  },
  async "web-nohash"(bucket, output) {
    const body = (await getBody(bucket)) as unknown as {
      transformToWebStream(): ReadableStream<Uint8Array>;
    };
    const file = await Deno.open(output, { write: true, createNew: true });
    for await (const chunk of body.transformToWebStream()) await writeAll(file, chunk);
    file.close();
  },
  async "node-nohash"(bucket, output) {
    await pipeline(await getBody(bucket), createWriteStream(output));
  },
  async "node-hash"(bucket, output) {
    const hash = createHash("sha256");
    const hasher = new Transform({
      transform(chunk, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(await getBody(bucket), hasher, createWriteStream(output));
    hash.digest("hex");
  },
  async "walsync-coalesce"(bucket, output) {
    const storage = s3Storage({ bucket, prefix: "exp" });
    const read = await readObject(storage, key);
    const file = await Deno.open(output, { write: true, createNew: true });
    await writeCoalesced(file, read.body);
    read.finish();
    file.close();
    storage.close();
  },
  async "iter-hash"(bucket, output) {
    const hash = createHash("sha256");
    const file = await Deno.open(output, { write: true, createNew: true });
    for await (const chunk of await getBody(bucket)) {
      hash.update(chunk);
      await writeAll(file, chunk);
    }
    hash.digest("hex");
    file.close();
  },
};

if (values.variant) {
  // Child: one download.
  await variants[values.variant](values.bucket!, values.output!);
  Deno.exit(0);
}

const runs = Number(values.runs);
const size = Number(values["size-mib"]) * MiB;
const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-download-" });
const minio = await startMinio();
try {
  await requireFreeDisk(tmp, 3 * size + 512 * MiB);
  const source = join(tmp, "source.bin");
  await writeRandomFile(source, size);
  const digest = await hashFile(source);
  for (const [k, v] of Object.entries(minio.env)) Deno.env.set(k, v);
  const storage = s3Storage({ bucket: minio.bucket, prefix: "exp" });
  await storage.put(key, () => fileStream(source), {
    size,
    sha256: digest.sha256,
    metadata: { [meta.sha256]: digest.sha256, [meta.size]: String(size) },
  });
  storage.close();
  await removeQuietly(source);

  const output = join(tmp, "out.bin");
  const results: Record<string, Timed[]> = {};
  const self = new URL(import.meta.url).pathname;
  for (let run = 0; run <= runs; run++) {
    for (const name of Object.keys(variants)) {
      await removeQuietly(output);
      const t = await timed(
        Deno.execPath(),
        [
          "run",
          "-A",
          "--quiet",
          self,
          "--variant",
          name,
          "--bucket",
          minio.bucket,
          "--output",
          output,
        ],
        { env: { ...minio.env }, tmpDir: tmp },
      );
      if ((await Deno.stat(output)).size !== size) throw new Error(`${name}: wrong size`);
      if (run > 0) (results[name] ??= []).push(t); // run 0 is a warm-up
    }
  }
  await removeQuietly(output);
  const base = median(results["node-nohash"].map((t) => t.seconds));
  table(
    ["variant", "median", "best", "vs node-nohash", "CPU (med)", "peak RSS"],
    Object.entries(results).map(([name, t]) => [
      name,
      secs(median(t.map((x) => x.seconds))),
      secs(min(t.map((x) => x.seconds))),
      `${((median(t.map((x) => x.seconds)) / base - 1) * 100).toFixed(0)} %`,
      secs(median(t.map((x) => x.cpuSeconds))),
      rssMb(Math.max(...t.map((x) => x.peakRssKib))),
    ]),
  );
} finally {
  await minio.stop();
  await removeQuietly(tmp);
}
