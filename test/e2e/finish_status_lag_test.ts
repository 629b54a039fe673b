/**
 * `walsync status --db <path>`: lag is the age of the oldest local commit not in storage,
 * found by comparing what SQLite has committed locally with the bucket's head (issue 10,
 * item 4). Without the local database, status says lag needs it instead of showing the age of
 * the newest object as if it were lag.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileBucket } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { sqliteSession } from "../support/sqlite.ts";
import { sleep, waitUntil } from "../support/wait.ts";
import { startWatch, walsync } from "../support/walsync.ts";

interface StatusDoc {
  databases: {
    name: string;
    latestTxid: number;
    lagSeconds: number | null;
    lagKnown: string;
    behind?: boolean;
  }[];
}

async function statusJson(bucketArg: string, args: string[]): Promise<StatusDoc> {
  const result = await walsync(["status", ...args, "-b", bucketArg, "--json"]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  return JSON.parse(result.stdout);
}

Deno.test("status --db: exact 0 when every commit is shipped, a lower bound once a local commit is not", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const path = join(dir, "app.db");
  // An application holds its connection open, so the WAL and -shm stay while watch stops.
  const app = sqliteSession(path);
  try {
    await app.run("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);");
    const watch = startWatch(bucket, [path]);
    try {
      await watch.waitForLog(/snapshot uploaded/);
      for (let i = 0; i < 3; i++) await app.run(`INSERT INTO t(v) VALUES ('row ${i}');`);
      await waitUntil("the last commit to be shipped", async () => {
        const doc = await statusJson(bucket.arg, ["--db", path]);
        return doc.databases[0].lagKnown === "exact";
      });
    } finally {
      const stopped = await watch.stop();
      assert.equal(stopped.code, 0, stopped.log);
    }
    const shipped = await statusJson(bucket.arg, ["--db", path]);
    assert.equal(shipped.databases[0].name, "app.db");
    assert.equal(shipped.databases[0].lagSeconds, 0);
    assert.equal(shipped.databases[0].lagKnown, "exact");
    assert.equal(shipped.databases[0].behind, false);

    // Nothing ships this commit: status must say it is behind, by at least its age.
    await app.run("INSERT INTO t(v) VALUES ('not shipped');");
    await sleep(1500);
    const behind = await statusJson(bucket.arg, ["--db", path]);
    const d = behind.databases[0];
    assert.equal(d.behind, true, JSON.stringify(d));
    assert.equal(d.lagKnown, "at-least");
    assert.ok(d.lagSeconds !== null && d.lagSeconds >= 1, JSON.stringify(d));

    const text = await walsync(["status", "-b", bucket.arg, "--db", path]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /lag: at least \d/);

    // Without the local database, lag is not pretended from the bucket alone.
    const bucketOnly = await statusJson(bucket.arg, []);
    assert.equal(bucketOnly.databases[0].lagSeconds, null);
    assert.equal(bucketOnly.databases[0].lagKnown, "unknown");
    const plain = await walsync(["status", "-b", bucket.arg]);
    assert.match(plain.stdout, /lag: unknown: lag needs the local database path \(--db\)/);
  } finally {
    await app.close();
  }
});

Deno.test("status --db with a path that does not exist is a usage error", async () => {
  const bucket = await fileBucket();
  const result = await walsync(["status", "-b", bucket.arg, "--db", "/nonexistent/app.db"]);
  assert.equal(result.code, 2, result.stdout + result.stderr);
  assert.match(result.stderr, /--db \/nonexistent\/app\.db does not exist/);
});
