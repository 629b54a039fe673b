/**
 * Experiment: what the upload half of a snapshot costs, layer by layer. A 1 GiB random file
 * (a stand-in for the snapshot's temp copy) is uploaded to a MinIO from the test harness by
 * each variant in its own subprocess (own peak RSS), interleaved, `--runs` times:
 *
 *   deno run -A bench/upload_experiment.ts [--runs 3] [--size-mib 1024]
 *
 * - node-plain: lib-storage Upload of `createReadStream` (the `plain_s3.ts` baseline);
 * - web-plain: lib-storage Upload of `src/hash.ts` `fileStream` (Walsync's body, no hashing);
 * - web-streamhash: `fileStream` through `hashingStream` (Walsync's in-stream digest only);
 * - web-sdksha: `fileStream` with `ChecksumAlgorithm: SHA256` (the SDK hashes every part and
 *   MinIO verifies it; no Walsync digest);
 * - walsync-put: `s3Storage().put` as `takeSnapshot` calls it (in-stream digest, guard and
 *   SDK per-part SHA256), without the hash pre-pass;
 * - node-streamhash: `createReadStream` through a Node Transform feeding `createHash`;
 * - web-plain-8MiB-parts, web-plain-2-in-flight: web-plain with half the part size or half
 *   the parts in flight, to see what sets the peak RSS of an upload.
 * @module
 */
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import { parseArgs } from "node:util";
import { startMinio } from "../test/support/minio.ts";
import { fileStream, hashFile, hashingStream } from "../src/hash.ts";
import { meta } from "../src/layout.ts";
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

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    "size-mib": { type: "string", default: "1024" },
    variant: { type: "string" },
    bucket: { type: "string" },
    file: { type: "string" },
    sha256: { type: "string" },
  },
});

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

async function upload(
  bucket: string,
  body: unknown,
  sdkSha256: boolean,
  parts: { partSize?: number; queueSize?: number } = {},
): Promise<void> {
  const s3 = client();
  try {
    await new Upload({
      client: s3,
      params: {
        Bucket: bucket,
        Key: "exp/upload.bin",
        Body: body as ReadableStream,
        ...(sdkSha256 ? { ChecksumAlgorithm: "SHA256" as const } : {}),
      },
      partSize: parts.partSize ?? 16 * MiB,
      queueSize: parts.queueSize ?? 4,
      leavePartsOnError: false,
    }).done();
  } finally {
    s3.destroy();
  }
}

type Args = { bucket: string; file: string; sha256: string; size: number };
const variants: Record<string, (a: Args) => Promise<void>> = {
  "node-plain": (a) => upload(a.bucket, createReadStream(a.file, { highWaterMark: MiB }), false),
  "web-plain": (a) => upload(a.bucket, fileStream(a.file), false),
  "web-plain-8MiB-parts": (a) => upload(a.bucket, fileStream(a.file), false, { partSize: 8 * MiB }),
  "web-plain-2-in-flight": (a) => upload(a.bucket, fileStream(a.file), false, { queueSize: 2 }),
  "web-streamhash": async (a) => {
    const h = hashingStream();
    await upload(a.bucket, fileStream(a.file).pipeThrough(h.stream), false);
    if (h.digest() !== a.sha256) throw new Error("digest differs");
  },
  "web-sdksha": (a) => upload(a.bucket, fileStream(a.file), true),
  "walsync-put": async (a) => {
    const storage = s3Storage({ bucket: a.bucket, prefix: "exp" });
    try {
      await storage.put("upload.bin", () => fileStream(a.file), {
        size: a.size,
        sha256: a.sha256,
        metadata: { [meta.sha256]: a.sha256, [meta.size]: String(a.size) },
      });
    } finally {
      storage.close();
    }
  },
  "node-streamhash": async (a) => {
    const hash = createHash("sha256");
    const hasher = new Transform({
      transform(chunk, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await upload(a.bucket, createReadStream(a.file, { highWaterMark: MiB }).pipe(hasher), false);
    if (hash.digest("hex") !== a.sha256) throw new Error("digest differs");
  },
};

if (values.variant) {
  const size = (await Deno.stat(values.file!)).size;
  await variants[values.variant]({
    bucket: values.bucket!,
    file: values.file!,
    sha256: values.sha256!,
    size,
  });
  Deno.exit(0);
}

const runs = Number(values.runs);
const size = Number(values["size-mib"]) * MiB;
const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-upload-" });
const minio = await startMinio();
try {
  await requireFreeDisk(tmp, 3 * size + 512 * MiB);
  const source = join(tmp, "source.bin");
  await writeRandomFile(source, size);
  const { sha256 } = await hashFile(source);
  const results: Record<string, Timed[]> = {};
  const self = new URL(import.meta.url).pathname;
  for (let run = 0; run <= runs; run++) {
    for (const name of Object.keys(variants)) {
      const t = await timed(
        Deno.execPath(),
        [
          "run",
          "-A",
          "--quiet",
          self,
          ...["--variant", name, "--bucket", minio.bucket, "--file", source, "--sha256", sha256],
        ],
        { env: { ...minio.env }, tmpDir: tmp },
      );
      if (run > 0) (results[name] ??= []).push(t); // run 0 is a warm-up
    }
  }
  const base = median(results["node-plain"].map((t) => t.seconds));
  table(
    ["variant", "median", "best", "vs node-plain", "CPU (med)", "peak RSS"],
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
