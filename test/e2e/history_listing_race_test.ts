/**
 * A reader that listed a bucket before reading its head (`walsync status` and `walsync list`
 * list every database first) while `watch` shipped meanwhile: the head then names an object the
 * listing was made too early to see. That is the bucket moving on, not a broken history, and
 * must not be reported as one (exit 5). Found by the torture test, seed 4231410329 step 255:
 * "status reports a broken chain: ... object is missing (the history ends with it)" at a quiet
 * check whose restore, a moment later, was exact.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readCatalog } from "../../src/history/catalog.ts";
import { readHistory } from "../../src/history/read.ts";
import { fileStorage } from "../../src/storage/file.ts";
import { fileBucket } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { sqlite } from "../support/sqlite.ts";
import { walsync } from "../support/walsync.ts";

Deno.test("readHistory given a listing made before the head moved on lists again instead of reporting the head's object missing", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, "CREATE TABLE t(v); INSERT INTO t VALUES (1);");
  const first = await walsync(["snapshot", db, "--bucket", bucket.arg], { env: bucket.env });
  assert.equal(first.code, 0, first.stderr);
  const storage = fileStorage(bucket.dir);
  try {
    const listedEarly = await readCatalog(storage, "app.db");
    // The history moves on after the listing: a new generation, and the head names its snapshot.
    await sqlite(db, "INSERT INTO t VALUES (2);");
    const second = await walsync(["snapshot", db, "--bucket", bucket.arg], { env: bucket.env });
    assert.equal(second.code, 0, second.stderr);

    const history = await readHistory(storage, "app.db", { catalog: listedEarly });
    assert.equal(history.catalog.generations.length, 2, "both generations are reached");
    const last = history.catalog.generations.at(-1)!;
    assert.equal(last.snapshots.at(-1)!.key, history.head!.key, "the history ends at the head");
  } finally {
    storage.close();
  }
});
