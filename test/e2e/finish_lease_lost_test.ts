/**
 * A `watch` whose lease was taken over (`--takeover` by another process) stops shipping that
 * database: one ERROR line names the new holder and how to get the lease back, the process
 * exits 1 once no database is left running, and while others still run, metrics show the
 * stopped one (`walsync_watcher_running 0`).
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileBucket } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { sqlite } from "../support/sqlite.ts";
import { waitUntil } from "../support/wait.ts";
import { assertRestoresExactly, startWatch } from "../support/walsync.ts";

const env = { WALSYNC_LEASE_SECONDS: "3" };

async function makeDb(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  await sqlite(path, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);");
  return path;
}

/** Waits for a process expected to exit on its own; kills it after `ms`. */
async function exitWithin(
  watch: ReturnType<typeof startWatch>,
  ms: number,
): Promise<{ code: number; log: string }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    watch.kill();
  }, ms);
  try {
    // SIGCONT does nothing to a running process: stop() then just waits for its exit.
    const result = await watch.stop("SIGCONT");
    assert.ok(!timedOut, `watch did not exit on its own within ${ms} ms:\n${result.log}`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("watch that lost its lease to --takeover stops with one ERROR line naming the holder, and exits 1", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const path = await makeDb(dir, "app.db");
  const first = startWatch(bucket, [path], { env });
  let second: ReturnType<typeof startWatch> | undefined;
  try {
    await first.waitForLog(/snapshot uploaded/);
    // Only once the first is shipping does the second start, and take over.
    second = startWatch(bucket, [path], { env, args: ["--takeover"] });
    await second.waitForLog(/snapshot uploaded/);
    for (let i = 0; i < 3; i++) await sqlite(path, `INSERT INTO t VALUES (${i + 2});`);
    const lost = await exitWithin(first, 20_000);
    assert.equal(lost.code, 1, lost.log);
    const errors = lost.log.split("\n").filter((l) => / ERROR /.test(l));
    assert.equal(errors.length, 1, lost.log);
    assert.match(errors[0], new RegExp(`lost the lease .*pid ${second.pid}`));
    assert.match(errors[0], /--takeover/);
    assert.match(errors[0], /stopped shipping/);
    assert.doesNotMatch(lost.log, /sync failed; will retry/);
    // The new holder's history is whole.
    await sqlite(path, "INSERT INTO t VALUES (99);");
    await waitUntil("the new holder to ship", async () => {
      try {
        await assertRestoresExactly(bucket, path, "app.db", dir);
        return true;
      } catch {
        return false;
      }
    });
    assert.equal((await second.stop()).code, 0);
  } finally {
    await first.kill();
    await second?.kill();
  }
});

Deno.test("watch of two databases that lost one lease keeps the other and shows the stopped one in metrics", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const a = await makeDb(dir, "a.db");
  const b = await makeDb(dir, "b.db");
  const both = startWatch(bucket, [a, b], {
    env,
    args: ["--metrics-addr", "127.0.0.1:0"],
  });
  let rival: ReturnType<typeof startWatch> | undefined;
  try {
    await both.waitForLog(/snapshot uploaded/, { count: 2 });
    rival = startWatch(bucket, [a], { env, args: ["--takeover"] });
    await rival.waitForLog(/snapshot uploaded/);
    await sqlite(a, "INSERT INTO t VALUES (2);");
    await both.waitForLog(/lost the lease/, { timeoutMs: 20_000 });
    const port = /port (\d+)/.exec(both.log())?.[1];
    assert.ok(port, both.log());
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /walsync_watcher_running\{db="a\.db",[^}]*\} 0/);
    assert.match(metrics, /walsync_watcher_running\{db="b\.db",[^}]*\} 1/);
    // b.db still ships.
    await sqlite(b, "INSERT INTO t VALUES (3);");
    await waitUntil("b.db to ship", async () => {
      try {
        await assertRestoresExactly(bucket, b, "b.db", dir);
        return true;
      } catch {
        return false;
      }
    });
    const stopped = await both.stop();
    // a.db was not shipped to the end by this process: say so with exit 1.
    assert.equal(stopped.code, 1, stopped.log);
    assert.equal((await rival.stop()).code, 0);
  } finally {
    await both.kill();
    await rival?.kill();
  }
});
