/**
 * Does Walsync's memory grow with the database, or level off? Runs `walsync snapshot` and
 * `walsync restore` once per database size against a MinIO from the test harness, sampling
 * the subprocess's RSS every 200 ms, and prints its peak (VmHWM) with the samples.
 *
 *   deno run -A bench/rss_timeline.ts [--sizes 100,1024,2048]
 *
 * A peak that stops rising between the two largest sizes means memory is bounded; the
 * samples show when in the command it is reached (copy, digest pre-pass, upload...).
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startMinio } from "../test/support/minio.ts";
import { createDatabase, mainTs, MiB, removeQuietly, requireFreeDisk, secs } from "./common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { sizes: { type: "string", default: "100,1024,2048" } },
});
const sizes = values.sizes.split(",").map(Number);

async function sampled(args: string[], env: Record<string, string>) {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", mainTs, ...args],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const samples: number[] = [];
  let hwm = 0;
  const timer = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      samples.push(Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0) >> 10);
      hwm = Math.max(hwm, Number(status.match(/^VmHWM:\s+(\d+)/m)?.[1] ?? 0) >> 10);
    } catch { /* exited */ }
  }, 200);
  const out = await child.output();
  clearInterval(timer);
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  return { seconds: (performance.now() - t0) / 1000, hwm, samples };
}

const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-rss-" });
const minio = await startMinio();
try {
  const largest = Math.max(...sizes) * MiB;
  await requireFreeDisk(tmp, 5 * largest + 512 * MiB);
  const env = { ...minio.env, TMPDIR: tmp, NO_COLOR: "1" };
  console.log(
    "size, command: wall, peak RSS (VmHWM, last sample before exit) | RSS every 200 ms in MiB",
  );
  for (const mib of sizes) {
    const name = `rss-${mib}.db`;
    const db = join(tmp, name);
    const out = join(tmp, "restored.db");
    await createDatabase(db, mib * MiB);
    const bucket = `s3://${minio.bucket}/rss${mib}`;
    for (
      const [label, args] of [
        ["snapshot", ["snapshot", db, "--bucket", bucket]],
        ["restore", ["restore", name, "--bucket", bucket, "-o", out]],
      ] as const
    ) {
      const r = await sampled([...args], env);
      console.log(
        `${mib} MiB ${label}: ${secs(r.seconds)}, peak ${r.hwm} MiB | ${r.samples.join(" ")}`,
      );
    }
    await removeQuietly(out);
    await removeQuietly(db);
  }
} finally {
  await minio.stop();
  await removeQuietly(tmp);
}
