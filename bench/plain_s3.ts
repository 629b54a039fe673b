/**
 * The baseline for `snapshot_bench.ts`: a plain AWS SDK upload or download of one file, with
 * no hashing, no checksums and no temp copy. Run as a subprocess so its time and peak RSS
 * compare with the `walsync` CLI's.
 *
 *   deno run -A bench/plain_s3.ts upload <file> <bucket> <key>
 *   deno run -A bench/plain_s3.ts download <bucket> <key> <output>
 *
 * Credentials and endpoint come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
 * AWS_ENDPOINT_URL_S3. The client settings match `src/storage/s3_client.ts` (path-style, keep-alive,
 * 16 sockets) except that checksums stay off; uploads use `@aws-sdk/lib-storage` with the
 * same 16 MiB parts and 4 parts in flight as Walsync's multipart path.
 * @module
 */
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createReadStream, createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const MiB = 1024 * 1024;

function client(): S3Client {
  const endpoint = Deno.env.get("AWS_ENDPOINT_URL_S3") || undefined;
  return new S3Client({
    region: Deno.env.get("AWS_REGION") || "us-east-1",
    endpoint,
    forcePathStyle: endpoint !== undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      httpAgent: { keepAlive: true, maxSockets: 16 },
      httpsAgent: { keepAlive: true, maxSockets: 16 },
    },
  });
}

/** Uploads a file with lib-storage (multipart above one part). */
export async function plainUpload(s3: S3Client, file: string, bucket: string, key: string) {
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: createReadStream(file, { highWaterMark: MiB }) },
    partSize: 16 * MiB,
    queueSize: 4,
    leavePartsOnError: false,
  });
  await upload.done();
}

/** Downloads an object into a file. */
export async function plainDownload(s3: S3Client, bucket: string, key: string, output: string) {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await pipeline(out.Body as Readable, createWriteStream(output));
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  const s3 = client();
  try {
    if (command === "upload" && rest.length === 3) {
      await plainUpload(s3, rest[0], rest[1], rest[2]);
    } else if (command === "download" && rest.length === 3) {
      await plainDownload(s3, rest[0], rest[1], rest[2]);
    } else {
      console.error(
        "usage: plain_s3.ts upload <file> <bucket> <key> | download <bucket> <key> <output>",
      );
      Deno.exit(2);
    }
  } finally {
    s3.destroy();
  }
}
