/**
 * How much memory a restore needs: run inside a memory cgroup, whose limit bounds its heap and
 * the page cache of the file it writes together (as a container's limit does), a restore of a
 * database larger than the limit completes, identical to its source. A restore that held the
 * database, or more than a few ranges, in memory is killed by the kernel's OOM killer instead:
 * 32 MiB ranges with 3 in flight (five buffers then) were, in a 200 MiB group, with a 1 GiB
 * database (docs/benchmarks.md). Today's 32 MiB x 2 (three buffers) passes. Skipped
 * where this machine has no memory cgroup to make (not root, no controller).
 *
 * And the restore's own peak RSS stays under 300 MiB whatever the database's size: with the
 * restored file mapped for integrity_check, a 384 MiB database took it to 574 MiB.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { s3Bucket, sdkTest } from "../support/bucket.ts";
import { memoryGroup, runInGroup } from "../support/cgroup.ts";
import { workDir } from "../support/files.ts";
import { dbFingerprint, sqlite } from "../support/sqlite.ts";
import { mainTs, walsync } from "../support/walsync.ts";
import { peakRssOf } from "../support/memory.ts";

const MiB = 1024 * 1024;

/**
 * A database of `mib` MiB of 4 KiB blobs in a bucket on MinIO: its path, the bucket, and the
 * command line that restores it to `out` as operators run it.
 */
async function backedUpDatabase(mib: number) {
  const bucket = await s3Bucket();
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(
    db,
    `PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
     INSERT INTO t(v) SELECT randomblob(4000) FROM generate_series(1, ${mib * 256});`,
  );
  const snap = await walsync(["snapshot", db, "--bucket", bucket.arg], { env: bucket.env });
  assert.equal(snap.code, 0, snap.stderr);
  const out = join(dir, "restored.db");
  const restoreCommand = [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    // The flags `deno task walsync` and the compiled binary run with (deno.json).
    "--v8-flags=--max-semi-space-size=1,--optimize-for-size",
    mainTs,
    "restore",
    "app.db",
    "--bucket",
    bucket.arg,
    "-o",
    out,
  ];
  return { db, out, restoreCommand, env: { ...bucket.env, NO_COLOR: "1" } };
}

Deno.test(
  "a restore of a 256 MiB database completes inside a 160 MiB memory cgroup (heap and page cache together), identical to its source",
  sdkTest,
  async () => {
    const group = memoryGroup(`walsync-test-${Deno.pid}-${Date.now()}`, 160 * MiB);
    if (group === null) {
      console.log("skipped: no memory cgroup on this machine");
      return;
    }
    try {
      const { db, out, restoreCommand, env } = await backedUpDatabase(256);
      const r = await runInGroup(group, restoreCommand, env);
      assert.equal(r.code, 0, `exit ${r.code} (137: killed for memory): ${r.stderr}`);
      const [want, got] = await Promise.all([dbFingerprint(db), dbFingerprint(out)]);
      assert.equal(got.integrity, "ok");
      assert.equal(got.sha3, want.sha3);
    } finally {
      for (let i = 0; i < 20; i++) {
        try {
          group.remove();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // the restore's process is still leaving
        }
      }
    }
  },
);

Deno.test(
  "a restore's peak RSS does not grow with the database: integrity_check reads the restored file without mapping it into the process",
  sdkTest,
  async () => {
    const { db, out, restoreCommand, env } = await backedUpDatabase(384);
    const r = await peakRssOf(restoreCommand, env);
    assert.equal(r.code, 0, r.stderr);
    // 384 MiB of pages mapped for the check would put it far above this; the download's
    // buffers and the runtime stay well below it, at any size (docs/benchmarks.md).
    assert.ok(r.peakRssBytes < 300 * MiB, `peak RSS ${Math.round(r.peakRssBytes / MiB)} MiB`);
    assert.equal((await dbFingerprint(out)).sha3, (await dbFingerprint(db)).sha3);
  },
);
