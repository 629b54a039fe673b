/**
 * Failures the torture test (`test/support/torture/`) found, each reduced to a short deterministic
 * scenario, named after the behaviour it keeps; the comment beside each names the bug it found.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileBucket } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { sqlite } from "../support/sqlite.ts";
import { waitUntil } from "../support/wait.ts";
import { startWatch } from "../support/walsync.ts";
import { inspect, listDb, restore } from "../support/torture/inspect.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `walsync list` shows a txid above `after` and it holds still for a second. */
async function shippedPast(bucket: { arg: string; env: Record<string, string> }, after: number) {
  let last = -1;
  await waitUntil(`a txid past ${after}`, async () => {
    const { latestTxid } = await listDb(bucket, "app.db");
    const still = latestTxid > after && latestTxid === last;
    last = latestTxid;
    if (!still) await sleep(500);
    return still;
  }, 30_000);
  return last;
}

Deno.test({
  // Found by `scripts/torture.sh` (seed 21, step 29: a latest restore stopped two commits short
  // of the source, for good). Bug, fixed by reading the wal-index header (src/format/wal_index.ts):
  // watch decided whether the -wal changed by size + mtime + inode, with mtime in milliseconds.
  // After its own checkpoint the next commit rewrites the WAL in place at the same size; a commit
  // within the same millisecond as watch's last look was not seen. When the database file then
  // changed (an application's checkpoint), watch moved its held reader to a new snapshot although
  // it read nothing, so the unseen commit was no longer protected; an application's TRUNCATE then
  // emptied the WAL: the commit was never shipped, and the next segment continued the chain
  // without it, so every later txid restored a state that lacked it.
  // The coarse clock is played here by setting the -wal's mtime back while watch is stopped.
  name: "a commit rewritten in place in the millisecond watch last looked survives a TRUNCATE",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await workDir();
    const bucket = await fileBucket();
    const db = join(dir, "app.db");
    await sqlite(
      db,
      `PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, x BLOB);
       INSERT INTO t(x) SELECT randomblob(4000) FROM generate_series(1, 10);`,
    );
    const watch = startWatch(bucket, [db], { args: ["--checkpoint-size", "65536"] });
    try {
      await watch.waitForLog(/generation started/);
      // Past --checkpoint-size: watch ships it and checkpoints the whole WAL.
      await sqlite(db, "INSERT INTO t(x) SELECT randomblob(4000) FROM generate_series(1, 40);");
      await watch.waitForLog(/checkpointed/);
      // A: the first commit after a full checkpoint restarts the WAL, in place (same size).
      await sqlite(db, "UPDATE t SET x = randomblob(100) WHERE id = 1;");
      const afterA = await shippedPast(bucket, 0);
      const looked = await Deno.stat(`${db}-wal`);
      // B, while watch is stopped, then the -wal's mtime put back: to watch, nothing changed.
      Deno.kill(watch.pid, "SIGSTOP");
      try {
        await sqlite(db, "UPDATE t SET x = randomblob(100) WHERE id = 2;");
        await Deno.utime(`${db}-wal`, looked.atime!, looked.mtime!);
      } finally {
        Deno.kill(watch.pid, "SIGCONT");
      }
      // The application checkpoints: PASSIVE copies A (all watch's reader allows), so the
      // database file changed and watch moves its reader on, onto a snapshot holding B; then
      // TRUNCATE copies B and empties the WAL once watch moved again. Then it commits C.
      await sqlite(db, "PRAGMA wal_checkpoint(PASSIVE);");
      await sleep(500);
      await sqlite(db, ".timeout 10000\nPRAGMA wal_checkpoint(TRUNCATE);");
      await sqlite(db, "UPDATE t SET x = randomblob(100) WHERE id = 3;");
      await shippedPast(bucket, afterA);
      await sleep(1000);
      const got = await restore(bucket, "app.db", dir);
      assert.equal(got.code, 0, got.error);
      const [want, have] = [await inspect(db), await inspect(got.path)];
      assert.equal(have.integrity, "ok");
      assert.equal(have.sha3, want.sha3, "the latest restore lacks commit B");
    } finally {
      await watch.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(bucket.dir, { recursive: true }).catch(() => {});
    }
  },
});
