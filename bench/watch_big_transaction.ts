/**
 * Peak memory of `walsync watch` shipping one very large transaction: the watcher must
 * stream a transaction larger than a segment's bound (a spill file), never hold it whole.
 *
 * ```
 * deno run -A bench/watch_big_transaction.ts [--mb 400] [--main path/to/main.ts]
 * ```
 *
 * Starts `walsync watch` (as `deno task walsync` runs it) on a fresh WAL database with a
 * `file://` bucket, waits for its first snapshot, then commits one transaction of `--mb` MB
 * of incompressible blobs through the `sqlite3` CLI, and waits until the segment holding it
 * is in the bucket. Reports the watcher's peak RSS (VmHWM) before and after the transaction.
 * `--main` runs another checkout's main.ts (e.g. the code before a change) for comparison.
 * Target (issue 10): under 250 MiB for 400 MB, independent of the transaction's size.
 * Nothing asserts on the figures.
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { machineReport, mainTs, mib, procMemory, sleep, walsyncRunArgs } from "./common.ts";

const args = parseArgs({
  options: { mb: { type: "string", default: "400" }, main: { type: "string" } },
});
const mb = Number(args.values.mb);
const main = args.values.main ?? mainTs;
const runArgs = [...walsyncRunArgs.slice(0, -1), main];

async function sqlite(db: string, sql: string): Promise<void> {
  const out = await new Deno.Command("sqlite3", { args: [db, sql], stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

const dir = await Deno.makeTempDir({ prefix: "walsync-bench-bigtx-" });
const db = join(dir, "app.db");
const bucket = join(dir, "bucket");
await sqlite(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);");
const child = new Deno.Command(Deno.execPath(), {
  args: [...runArgs, "watch", db, "--bucket", `file://${bucket}`, "--sync-interval", "1s"],
  stdin: "null",
  stdout: "null",
  stderr: "piped",
}).spawn();
let log = "";
const reading = (async () => {
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) log += decoder.decode(chunk, { stream: true });
})();

async function waitFor(what: string, test: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${log}`);
    await sleep(100);
  }
}

/** Whether the bucket holds a segment whose last txid is at least `txid`. */
function segmentUpTo(txid: number): boolean {
  const walDir = (() => {
    try {
      const gens = [...Deno.readDirSync(join(bucket, "app.db", "generations"))];
      return join(bucket, "app.db", "generations", gens[0].name, "wal");
    } catch {
      return null;
    }
  })();
  if (walDir === null) return false;
  try {
    for (const entry of Deno.readDirSync(walDir)) {
      const m = entry.name.match(/^[0-9a-f]{16}-([0-9a-f]{16})\.wal$/);
      if (m && parseInt(m[1], 16) >= txid) return true;
    }
  } catch { /* not yet */ }
  return false;
}

try {
  console.log(await machineReport(null));
  await waitFor("the first snapshot", () => /snapshot uploaded/.test(log), 60_000);
  await sleep(2000);
  const before = procMemory(child.pid);
  const started = Date.now();
  // Blobs of 1 MB, each random: the WAL grows by about `mb` MB in one transaction.
  await sqlite(
    db,
    `BEGIN; INSERT INTO t(b) SELECT randomblob(1000000) FROM generate_series(1, ${mb}); COMMIT;`,
  );
  const committed = Date.now();
  const walBytes = (await Deno.stat(`${db}-wal`)).size;
  await waitFor("the transaction's segment", () => segmentUpTo(1), 600_000);
  const after = procMemory(child.pid);
  console.log(`\nmain: ${main}`);
  console.log(`transaction: ${mb} MB of blobs, WAL ${(walBytes / 2 ** 20).toFixed(0)} MiB`);
  console.log(`commit took ${committed - started} ms; shipped ${Date.now() - committed} ms later`);
  console.log(`watch RSS before: ${mib(before.rssKib)} (peak so far ${mib(before.hwmKib)})`);
  console.log(`watch peak RSS (VmHWM) after shipping: ${mib(after.hwmKib)}`);
} finally {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  await child.status;
  await reading.catch(() => {});
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
