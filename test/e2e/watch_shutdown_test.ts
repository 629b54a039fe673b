/**
 * `walsync watch` under trouble that is not the database's: a `file://` bucket that runs out
 * of space (a tiny tmpfs) keeps the generation and ships once space is back; SIGTERM ships
 * pending commits before waiting for a restore drill that is running (on MinIO, through a
 * proxy that holds the drill's download back); SIGTERM ships a database file replaced since
 * the last sync.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { appSchema, writer } from "../support/application.ts";
import { fileBucket, proxiedBucket, sdkTest } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { generationsOf, segmentKeys } from "../support/layout.ts";
import { sqlite } from "../support/sqlite.ts";
import { sleep, waitUntil } from "../support/wait.ts";
import { assertRestoresExactly, restoresWithin, startWatch } from "../support/walsync.ts";

/** Mounts a tmpfs of `size` at `dir`; false when this machine does not allow it. */
async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "null",
    stdout: "null",
  }).output().catch(() => null);
  return out?.success ?? false;
}

async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir], stderr: "null" }).output().catch(() => {});
}

/** Deletes the database and its `-wal` and `-shm`, as an application starting afresh would. */
async function deleteDatabase(db: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(db + suffix).catch(() => {});
}

/** Creates the database again at the same path, with two commits tagged `tag`. */
async function createAgain(db: string, tag: string): Promise<void> {
  await sqlite(db, appSchema);
  await writer(db, { transactions: 2, tag });
}

/** Fills the file system holding `dir` until a write fails; returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const filler = join(dir, "filler");
  const file = await Deno.open(filler, { write: true, create: true });
  try {
    const chunk = new Uint8Array(64 * 1024);
    for (;;) await file.write(chunk);
  } catch {
    /* full */
  } finally {
    file.close();
  }
  return filler;
}

Deno.test({
  name:
    "file: a bucket whose disk is full during watch keeps the generation, retries, and ships everything once space is back",
  async fn(t) {
    const bucket = await fileBucket();
    if (!(await mountTmpfs(bucket.dir, "4m"))) {
      t.step({ name: "skipped: mounting a tmpfs is not allowed here", ignore: true, fn() {} });
      return;
    }
    const dir = await workDir();
    const db = join(dir, "app.db");
    await sqlite(db, appSchema);
    const watch = startWatch(bucket, [db]);
    try {
      await watch.waitForLog(/snapshot uploaded/);
      await writer(db, { transactions: 10 });
      await waitUntil("first segments", async () => (await segmentKeys(bucket)).length > 0);
      const filler = await fill(bucket.dir);
      await writer(db, { transactions: 20, blobMax: 20_000 });
      await watch.waitForLog(/sync failed; will retry/, { count: 2 });
      await Deno.remove(filler);
      await writer(db, { transactions: 5, tag: "after" });
      assert.ok(await restoresWithin(bucket, db, "app.db", dir, 30_000), watch.log());
      assert.deepEqual((await generationsOf(bucket, "app.db")).length, 1, watch.log());
      assert.equal(watch.log().match(/generation started/g)?.length, 1, watch.log());
      const stopped = await watch.stop("SIGTERM");
      assert.equal(stopped.code, 0, stopped.log);
    } finally {
      await watch.kill();
      await unmount(bucket.dir);
    }
  },
});

Deno.test(
  "s3: SIGTERM while a restore drill is stuck half-way through its download ships the pending commits at once, then lets the drill end and exits 0 within 10 s",
  sdkTest,
  async () => {
    const { proxy, via, direct } = await proxiedBucket();
    // The first download of a snapshot through the proxy (the drill's: watch itself only uploads)
    // stops half-way until release(): a drill is running for as long as the test wants.
    proxy.add({
      direction: "response",
      action: "stall",
      match: (e) => e.method === "GET" && e.target.includes("/snapshots/"),
    });
    const dir = await workDir();
    const db = join(dir, "app.db");
    await sqlite(db, appSchema);
    await writer(db, { transactions: 3 });
    const watch = startWatch(via, [db], { args: ["--drill-interval", "200ms"] });
    const drillLines = () => watch.log().match(/restore drill (passed|failed)/g)?.length ?? 0;
    try {
      await waitUntil("a drill stuck on the snapshot", () => proxy.fired.length > 0);
      const drillsBefore = drillLines();
      await writer(db, { transactions: 5, tag: "late" });
      const stopping = watch.stop("SIGTERM");
      assert.ok(
        await restoresWithin(direct, db, "app.db", dir, 8_000),
        `the late commits were not shipped while the drill was stuck:\n${watch.log()}`,
      );
      assert.equal(drillLines(), drillsBefore, "the stuck drill has not ended");
      assert.equal(watch.exited(), false, "watch waits for the drill it started");
      proxy.release();
      const stopped = await stopping;
      assert.equal(stopped.code, 0, stopped.log);
      assert.ok(stopped.ms < 10_000, `took ${stopped.ms} ms`);
      assert.equal(drillLines(), drillsBefore + 1, stopped.log);
      await assertRestoresExactly(direct, db, "app.db", dir);
    } finally {
      proxy.release();
      await watch.kill();
      await proxy.stop();
    }
  },
);

Deno.test("file: a database deleted and created again just before SIGTERM is shipped before watch exits 0", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  await writer(db, { transactions: 3 });
  // A long sync interval: the recreated file is not picked up by a sync before the signal.
  const watch = startWatch(bucket, [db], { syncInterval: "3s" });
  try {
    await watch.waitForLog(/snapshot uploaded/);
    await deleteDatabase(db);
    await watch.waitForLog(/database file is missing/, { timeoutMs: 10_000 });
    await createAgain(db, "recreated");
    const stopped = await watch.stop("SIGTERM");
    assert.equal(stopped.code, 0, stopped.log);
    await assertRestoresExactly(bucket, db, "app.db", dir);
  } finally {
    await watch.kill();
  }
});

Deno.test("file: a database replaced by a new file that no sync has seen yet when SIGTERM comes is shipped before watch exits 0", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  await writer(db, { transactions: 3 });
  // A long sync interval: the watcher still holds the old file when the signal comes.
  const watch = startWatch(bucket, [db], { syncInterval: "30s" });
  try {
    await watch.waitForLog(/snapshot uploaded/);
    await deleteDatabase(db);
    await createAgain(db, "replacement");
    const stopped = await watch.stop("SIGTERM");
    assert.equal(stopped.code, 0, stopped.log);
    assert.match(stopped.log, /reason="database file replaced"/);
    await assertRestoresExactly(bucket, db, "app.db", dir);
  } finally {
    await watch.kill();
  }
});

Deno.test("file: a bucket directory that disappears under watch is reported, never created again below, and shipped to once it is back", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  const watch = startWatch(bucket, [db]);
  const aside = `${bucket.dir}.aside`;
  try {
    await watch.waitForLog(/snapshot uploaded/);
    // As an unmounted disk would: the directory is simply not there any more.
    await Deno.rename(bucket.dir, aside);
    await writer(db, { transactions: 5, tag: "while gone" });
    await watch.waitForLog(/bucket directory .* is gone/, { timeoutMs: 15_000 });
    await sleep(500);
    assert.equal(
      await Deno.stat(bucket.dir).then(() => "exists", () => "missing"),
      "missing",
      `watch created the bucket directory again:\n${watch.log()}`,
    );
    await Deno.rename(aside, bucket.dir);
    assert.ok(await restoresWithin(bucket, db, "app.db", dir, 30_000), watch.log());
    const stopped = await watch.stop("SIGTERM");
    assert.equal(stopped.code, 0, stopped.log);
  } finally {
    await watch.kill();
    await Deno.remove(aside, { recursive: true }).catch(() => {});
  }
});

Deno.test("file: a transaction too large for one segment is spilled to a temporary directory, which watch removes when it exits", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const tmp = join(dir, "tmp");
  await Deno.mkdir(tmp);
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  const watch = startWatch(bucket, [db], { env: { TMPDIR: tmp } });
  try {
    await watch.waitForLog(/snapshot uploaded/);
    // 40 MB in one transaction: more than the 32 MiB a segment is read in, so it is spilled.
    await sqlite(
      db,
      "INSERT INTO events(tag, n, data) SELECT 'big', value, randomblob(1000000) FROM generate_series(1, 40);",
    );
    assert.ok(await restoresWithin(bucket, db, "app.db", dir, 30_000), watch.log());
    const spillDirs = async () =>
      (await Array.fromAsync(Deno.readDir(tmp))).filter((e) => e.name.startsWith("walsync-spill-"));
    assert.equal((await spillDirs()).length, 1, "the transaction went through a spill directory");
    const stopped = await watch.stop("SIGTERM");
    assert.equal(stopped.code, 0, stopped.log);
    assert.deepEqual(await spillDirs(), [], "no spill directory left behind");
  } finally {
    await watch.kill();
  }
});
