/**
 * Litestream's first snapshot and its restore, timed like the other commands of
 * `restore_speed.ts`. Litestream only ever sees the loopback MinIO, with `AWS_CA_BUNDLE` and
 * every other inherited variable removed (`env -i`), its credentials given as
 * LITESTREAM_ACCESS_KEY_ID/SECRET. The config is `litestreamConfig` of `common.ts`:
 * Litestream's defaults apart from the replica and its sync interval.
 * @module
 */
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { basename, join } from "node:path";
import type { MinioServer } from "../test/support/minio.ts";
import { litestreamConfig, processCpuSeconds, procMemory, type Timed, timed } from "./common.ts";

function cleanEnv(minio: MinioServer): string[] {
  return [
    "-i",
    `PATH=${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    `HOME=${Deno.env.get("HOME") ?? "/tmp"}`,
    `LITESTREAM_ACCESS_KEY_ID=${minio.accessKey}`,
    `LITESTREAM_SECRET_ACCESS_KEY=${minio.secretKey}`,
  ];
}

async function writeConfig(
  minio: MinioServer,
  db: string,
  prefix: string,
  tmp: string,
): Promise<string> {
  if (!minio.endpoint.startsWith("http://127.0.0.1:")) {
    throw new Error(`refusing to point Litestream at ${minio.endpoint}: not 127.0.0.1`);
  }
  const path = join(tmp, `litestream-${prefix}.yml`);
  await Deno.writeTextFile(
    path,
    litestreamConfig(minio, [{ path: db, replicaPath: `${prefix}/${basename(db)}` }]),
  );
  return path;
}

/**
 * Starts `litestream replicate` on `db` and waits until its first LTX file holding the whole
 * database is in the bucket; the time is from start to that moment (polled every 50 ms), the
 * peak RSS from /proc. Litestream is stopped afterwards.
 */
export async function litestreamFirstSnapshot(
  bin: string,
  minio: MinioServer,
  db: string,
  prefix: string,
  tmp: string,
): Promise<Timed & { serverCpuSeconds: number }> {
  const config = await writeConfig(minio, db, prefix, tmp);
  const size = (await Deno.stat(db)).size;
  const s3 = new S3Client({
    endpoint: minio.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
  });
  const started = performance.now();
  const child = new Deno.Command("env", {
    args: [...cleanEnv(minio), bin, "replicate", "-config", config],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log.push(chunk);
  })();
  let peak = 0;
  let peakAnon = 0;
  let cpu = NaN;
  try {
    for (;;) {
      // Once it has exited, the last readings stand.
      const memory = procMemory(child.pid);
      peak = Math.max(peak, memory.hwmKib);
      peakAnon = Math.max(peakAnon, memory.anonKib);
      const used = processCpuSeconds(child.pid);
      if (!Number.isNaN(used)) cpu = used;
      const list = await s3.send(
        new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/` }),
      );
      const stored = (list.Contents ?? []).reduce((sum, o) => sum + (o.Size ?? 0), 0);
      if (stored >= size * 0.9) break;
      if (performance.now() - started > 600_000) {
        throw new Error(`litestream did not upload a snapshot in 10 min:\n${log.join("")}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      seconds,
      peakRssKib: peak,
      peakAnonKib: peakAnon,
      cpuSeconds: cpu,
      stdout: "",
      stderr: log.join(""),
      serverCpuSeconds: NaN,
    };
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await reading.catch(() => {});
    s3.destroy();
  }
}

/** `litestream restore -config <cfg> -o <out> <db>` under /usr/bin/time. */
export async function litestreamRestore(
  bin: string,
  minio: MinioServer,
  db: string,
  prefix: string,
  out: string,
  tmp: string,
): Promise<Timed & { serverCpuSeconds: number }> {
  const config = await writeConfig(minio, db, prefix, tmp);
  const t = await timed("env", [
    ...cleanEnv(minio),
    bin,
    "restore",
    "-config",
    config,
    "-o",
    out,
    db,
  ], {
    tmpDir: tmp,
  });
  return { ...t, serverCpuSeconds: NaN };
}
