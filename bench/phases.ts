/**
 * Where the time of a snapshot and a restore goes: each step timed on its own, in-process,
 * on one database, against a MinIO. Called by `snapshot_bench.ts` (after the end-to-end runs);
 * it uses Walsync's own exported functions, so it measures the current `src/` code.
 *
 * Snapshot steps: `copyDatabase` (SQLite backup API into a temp file), `hashSource` (the digest
 * pre-pass), then the upload four ways so the cost of each layer shows: a bare lib-storage
 * Upload (no checksums), the same with the SDK's per-part SHA256 (`ChecksumAlgorithm`), the
 * same with Walsync's streaming hasher in the pipe, and `storage.put` (both, as Walsync does).
 * Restore steps: a bare GetObject into a file, `readObject` (digest checked while streaming)
 * into a file, `fsync`, `PRAGMA integrity_check` (what restore runs) and `PRAGMA quick_check`.
 * @module
 */
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { integrityCheck } from "../src/format/database.ts";
import { fileSource, hashingStream, sourceStream } from "../src/support/hash.ts";
import { meta } from "../src/format/layout.ts";
import { readObject } from "../src/storage/object.ts";
import { copyDatabase } from "../src/ops/snapshot.ts";
import { s3Storage } from "../src/storage/s3.ts";
import cpuProcess from "node:process";
import {
  findMinioPid,
  hashPath,
  median,
  MiB,
  min,
  pathStream,
  processCpuSeconds,
  removeQuietly,
  secs,
  table,
} from "./common.ts";

/** What the phases need. */
export interface PhaseContext {
  /** Source database. */
  db: string;
  /** Scratch directory. */
  tmp: string;
  runs: number;
  bucket: string;
  /** AWS_* variables of the MinIO. */
  env: Record<string, string>;
}

/** Wall seconds, this process's CPU seconds and MinIO's CPU seconds of one step. */
interface Step {
  wall: number;
  cpu: number;
  server: number;
}

let minioPid: number | undefined;

async function time(fn: () => Promise<unknown> | unknown): Promise<Step> {
  const server0 = processCpuSeconds(minioPid);
  const cpu0 = cpuProcess.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuProcess.cpuUsage(cpu0);
  return {
    wall,
    cpu: (cpu.user + cpu.system) / 1e6,
    server: processCpuSeconds(minioPid) - server0,
  };
}

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.byteLength) written += await file.write(chunk.subarray(written));
}

/** Runs the phases and prints a table of median and best seconds per step. */
export async function runPhases(ctx: PhaseContext): Promise<void> {
  for (const [k, v] of Object.entries(ctx.env)) Deno.env.set(k, v);
  const endpoint = ctx.env.AWS_ENDPOINT_URL_S3;
  minioPid = findMinioPid(endpoint);
  // Same settings as src/storage/s3_client.ts, checksums only when asked for.
  const client = new S3Client({
    region: ctx.env.AWS_REGION ?? "us-east-1",
    endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      httpAgent: { keepAlive: true, maxSockets: 16 },
      httpsAgent: { keepAlive: true, maxSockets: 16 },
    },
  });
  const storage = s3Storage({ bucket: ctx.bucket, prefix: "phases", endpoint });
  const copy = join(ctx.tmp, "phase-copy.db");
  const out = join(ctx.tmp, "phase-out.db");
  const times: Record<string, Step[]> = {};
  const record = (name: string, step: Step) => (times[name] ??= []).push(step);
  let chunkInfo = "";

  const upload = (key: string, body: ReadableStream<Uint8Array>, sha256: boolean) =>
    new Upload({
      client,
      params: {
        Bucket: ctx.bucket,
        Key: key,
        Body: body,
        ...(sha256 ? { ChecksumAlgorithm: "SHA256" as const } : {}),
      },
      partSize: 16 * MiB,
      queueSize: 4,
      leavePartsOnError: false,
    }).done();

  console.log(`\n## Phases (in-process, ${ctx.runs} runs, big database)\n`);
  try {
    for (let run = 1; run <= ctx.runs; run++) {
      // --- snapshot steps
      await removeQuietly(copy);
      record(
        "snapshot: copyDatabase (backup API to temp file)",
        await time(() => copyDatabase(ctx.db, copy)),
      );
      let digest = { sha256: "", size: 0 };
      record(
        "snapshot: hashSource pre-pass (current)",
        await time(async () => (digest = await hashPath(copy))),
      );
      record(
        "upload: lib-storage, no checksums",
        await time(async () => upload("phases/plain", await pathStream(copy), false)),
      );
      record(
        "upload: + SDK per-part SHA256 (ChecksumAlgorithm)",
        await time(async () => upload("phases/sdk-sha", await pathStream(copy), true)),
      );
      record(
        "upload: + Walsync stream hash (hashingStream)",
        await time(async () =>
          upload(
            "phases/stream-sha",
            (await pathStream(copy)).pipeThrough(hashingStream().stream),
            false,
          )
        ),
      );
      const key = "snapshot.db";
      record(
        "upload: storage.put (stream hash + guard + SDK SHA256, as walsync)",
        await time(async () => {
          const source = await fileSource(copy);
          try {
            await storage.put(key, () => sourceStream(source), {
              size: digest.size,
              sha256: digest.sha256,
              metadata: { [meta.sha256]: digest.sha256, [meta.size]: String(digest.size) },
            });
          } finally {
            source.close();
          }
        }),
      );
      await storage.delete(["plain", "sdk-sha", "stream-sha"]);

      // --- restore steps
      await removeQuietly(out);
      record(
        "restore: GetObject into file, no hash",
        await time(async () => {
          const got = await client.send(
            new GetObjectCommand({ Bucket: ctx.bucket, Key: `phases/${key}` }),
          );
          const body = (got.Body as { transformToWebStream(): ReadableStream<Uint8Array> })
            .transformToWebStream();
          const file = await Deno.open(out, { write: true, create: true, truncate: true });
          try {
            for await (const chunk of body) await writeAll(file, chunk);
          } finally {
            file.close();
          }
        }),
      );
      await removeQuietly(out);
      let file: Deno.FsFile | undefined;
      let chunks = 0;
      record(
        "restore: readObject (SHA256 while streaming) into file",
        await time(async () => {
          const read = await readObject(storage, key);
          file = await Deno.open(out, { write: true, create: true, truncate: true });
          for await (const chunk of read.body) {
            chunks++;
            await writeAll(file, chunk);
          }
          read.finish();
        }),
      );
      chunkInfo = `${chunks} chunks, ${(digest.size / chunks / 1024).toFixed(1)} KiB average`;
      record("restore: fsync of the written file", await time(() => file!.sync()));
      file!.close();
      record(
        "restore: PRAGMA integrity_check (current)",
        await time(() => {
          if (integrityCheck(out) !== "ok") throw new Error("integrity_check failed");
        }),
      );
      record(
        "restore: PRAGMA quick_check (alternative)",
        await time(() => {
          const db = new DatabaseSync(out, { readOnly: true });
          try {
            db.prepare("PRAGMA quick_check").all();
          } finally {
            db.close();
          }
        }),
      );
      await removeQuietly(out);
      await removeQuietly(copy);
      console.log(`phases run ${run} done`);
    }
  } finally {
    await storage.delete(["snapshot.db", "plain", "sdk-sha", "stream-sha"]).catch(() => {});
    storage.close();
    client.destroy();
    await removeQuietly(copy);
    await removeQuietly(out);
  }
  console.log();
  table(
    ["step", "wall median", "wall best", "CPU here (med)", "MinIO CPU (med)"],
    Object.entries(times).map(([name, t]) => [
      name,
      secs(median(t.map((x) => x.wall))),
      secs(min(t.map((x) => x.wall))),
      secs(median(t.map((x) => x.cpu))),
      secs(median(t.map((x) => x.server))),
    ]),
  );
  console.log(`download chunking (readObject): ${chunkInfo}`);
}
