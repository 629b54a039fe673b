/**
 * `walsync restore` inside a memory cgroup: does a restore need more memory than its anonymous
 * RSS, now that `integrity_check` reads the restored file through a memory map (which counts in
 * the process's RSS)? The restore runs with the cgroup limited to `--limit-mib` (default 300, the
 * issue's RSS budget), which also caps the page cache the restore may keep; curl's plain GET of the
 * same bytes runs in the same cgroup for comparison. Linux, root, cgroup v1 or v2 with the memory
 * controller.
 *
 *   deno run -A bench/restore_memory_limit.ts [--size-mib 1024] [--limit-mib 300] [--runs 2]
 *     [--main path/to/other/main.ts]   (the restore of another checkout, for comparison)
 *
 * Prints per run: wall time, whether the restore succeeded and was `.sha3sum`-identical, and the
 * cgroup's peak charge (anonymous memory plus page cache) against its limit.
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type MemoryGroup, memoryGroup, runInGroup } from "../test/support/cgroup.ts";
import { startMinio } from "../test/support/minio.ts";
import { createDatabase, mainTs, MiB, removeQuietly, secs, sha3sum } from "./common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "size-mib": { type: "string", default: "1024" },
    "limit-mib": { type: "string", default: "300" },
    runs: { type: "string", default: "2" },
    main: { type: "string", default: mainTs },
  },
});
const size = Number(values["size-mib"]) * MiB;
const limit = Number(values["limit-mib"]) * MiB;

/** Runs a command inside the group; wall seconds, exit code and the last line of stderr. */
async function inGroup(group: MemoryGroup, cmd: string[], env: Record<string, string>) {
  const r = await runInGroup(group, cmd, env);
  return { ...r, stderr: r.stderr.trim().split("\n").slice(-1)[0] };
}

const made = memoryGroup(`walsync-bench-${Deno.pid}`, limit);
if (made === null) {
  console.error("no memory cgroup here (Linux, root, cgroup v1 or v2 with the memory controller)");
  Deno.exit(1);
}
const group: MemoryGroup = made;
const tmp = await Deno.makeTempDir({ prefix: "walsync-bench-cgroup-" });
const minio = await startMinio();
try {
  const db = join(tmp, "app.db");
  await createDatabase(db, size);
  const source = await sha3sum(db);
  const env = { ...minio.env, NO_COLOR: "1" };
  const bucket = `s3://${minio.bucket}/cgroup`;
  const deno = Deno.execPath();
  const snap = await new Deno.Command(deno, {
    args: ["run", "-A", mainTs, "snapshot", db, "--bucket", bucket],
    env,
    stdout: "null",
  }).output();
  if (snap.code !== 0) throw new Error("snapshot failed");
  const curl = [
    "curl",
    "-sf",
    "--aws-sigv4",
    "aws:amz:us-east-1:s3",
    "--user",
    `${minio.accessKey}:${minio.secretKey}`,
  ];
  const put = await new Deno.Command(curl[0], {
    args: [...curl.slice(1), "-T", db, `${minio.endpoint}/${minio.bucket}/plain.db`],
  }).output();
  if (put.code !== 0) throw new Error("curl PUT failed");
  console.log(
    `# restore of ${Math.round(size / MiB)} MiB in a memory cgroup limited to ${
      Math.round(limit / MiB)
    } MiB, ${new Date().toISOString()}`,
  );
  for (let run = 1; run <= Number(values.runs); run++) {
    const plain = join(tmp, "plain.out");
    group.resetPeak();
    const c = await inGroup(group, [
      ...curl,
      "-o",
      plain,
      `${minio.endpoint}/${minio.bucket}/plain.db`,
    ], {});
    console.log(
      `run ${run}: curl GET        ${secs(c.seconds)}  exit ${c.code}  cgroup peak ${
        (group.peak() / MiB).toFixed(1)
      } MiB`,
    );
    await removeQuietly(plain);
    const out = join(tmp, "restored.db");
    group.resetPeak();
    const r = await inGroup(group, [
      deno,
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=1,--optimize-for-size",
      values.main,
      "restore",
      "app.db",
      "--bucket",
      bucket,
      "-o",
      out,
    ], env);
    const same = r.code === 0 && (await sha3sum(out)) === source;
    console.log(
      `run ${run}: walsync restore ${secs(r.seconds)}  exit ${r.code}  cgroup peak ${
        (group.peak() / MiB).toFixed(1)
      } MiB  ${same ? ".sha3sum identical" : `FAILED: ${r.stderr}`}`,
    );
    await removeQuietly(out);
  }
} finally {
  await minio.stop();
  try {
    group.remove();
  } catch { /* a process may linger a moment */ }
  await removeQuietly(tmp);
}
