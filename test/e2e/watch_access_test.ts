/**
 * `watch` and a database it may read but not write: run as another user than the
 * application's, say. SQLite then opens the database and its `-shm` read-only, and a
 * `BEGIN IMMEDIATE` succeeds without taking the write lock, so the application goes on
 * committing through what watch takes for a locked moment (the start of a generation, the last
 * copy before a checkpoint). Watch must refuse such a database instead of backing it up on a
 * lock it does not hold.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { appSchema } from "../support/application.ts";
import { fileBucket } from "../support/bucket.ts";
import { unwritableSupported, withUnwritable, workDir } from "../support/files.ts";
import { sqlite, sqliteSession } from "../support/sqlite.ts";
import { startWatch } from "../support/walsync.ts";

/** Runs `body` while every file of `paths` cannot be written. */
function withAllUnwritable<T>(paths: string[], body: () => Promise<T>): Promise<T> {
  if (paths.length === 0) return body();
  return withUnwritable(paths[0], () => withAllUnwritable(paths.slice(1), body));
}

for (
  const [what, suffixes] of [
    ["its -shm", ["-shm"]],
    ["the database and its -shm (another user's files)", ["", "-shm"]],
  ] as const
) {
  Deno.test({
    name:
      `watch refuses a database when it cannot write ${what} (its write lock would hold nothing back): the log names the file and the fix, and no snapshot is uploaded`,
    ignore: !unwritableSupported(),
  }, async () => {
    const dir = await workDir();
    const bucket = await fileBucket();
    const db = join(dir, "app.db");
    await sqlite(db, appSchema);
    // The application keeps the database open, so its -wal and -shm stay.
    const app = sqliteSession(db);
    try {
      await app.run("INSERT INTO events(tag, n) VALUES ('app', 1);");
      await withAllUnwritable(suffixes.map((s) => `${db}${s}`), async () => {
        const watch = startWatch(bucket, [db]);
        try {
          await watch.waitForLog(/sync failed/, { timeoutMs: 10_000 });
          const log = watch.log();
          assert.match(log, /app\.db/);
          assert.match(log, /write access/);
          assert.match(log, /run walsync as/);
          assert.doesNotMatch(log, /snapshot uploaded|generation started/);
        } finally {
          await watch.kill();
        }
      });
    } finally {
      await app.close();
    }
    assert.deepEqual((await bucket.keys()).filter((k) => k.includes("/snapshots/")), []);
  });
}
