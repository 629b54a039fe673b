/**
 * `walsync watch` end to end, as an operator runs it: a real background process, an
 * application writing through the independent `sqlite3` CLI (one process per transaction, in
 * bash loops), and `walsync restore` at the end. Every scenario ends the same way: the
 * restore holds exactly what the application committed (`.sha3sum` of every table) and
 * passes `PRAGMA integrity_check`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openBucket } from "../../src/storage/bucket.ts";
import { restoreDatabase } from "../../src/ops/restore.ts";
import { startMinio } from "../support/minio.ts";
import { appSchema, bash, writer } from "../support/application.ts";
import { backends, fileBucket, s3BucketOn, sdkTest, type TestBucket } from "../support/bucket.ts";
import { filesIn, workDir } from "../support/files.ts";
import {
  generationsOf,
  maxStoredTxid,
  parseStoredKey,
  removeObject,
  segmentKeys,
  storedObjects,
} from "../support/layout.ts";
import { dbFingerprint, sqlite, sqliteSession, sqliteTry } from "../support/sqlite.ts";
import { sleep, waitUntil } from "../support/wait.ts";
import {
  assertRestoresExactly,
  restoreTo,
  startWatch,
  tryRestore,
  walsync,
  type WalsyncProcess,
} from "../support/walsync.ts";

/** A fresh WAL database with the application's schema. */
async function appDatabase(dir: string, file = "app.db"): Promise<string> {
  const db = join(dir, file);
  await sqlite(db, appSchema);
  return db;
}

/** Distinct transaction numbers of one writer tag (each transaction leaves at least one row). */
async function transactionsOf(db: string, tag: string): Promise<number> {
  return Number(await sqlite(db, `SELECT count(DISTINCT n) FROM events WHERE tag = '${tag}';`));
}

/** Waits until a restore taken while `watch` still runs equals the source. */
async function waitCaughtUp(bucket: TestBucket, db: string, name: string, dir: string) {
  const source = await dbFingerprint(db);
  await waitUntil(`the live backup of ${name} to catch up`, async () => {
    const r = await tryRestore(bucket, name, dir);
    assert.equal(r.code, 0, `restore ${name} failed:\n${r.stderr}${r.stdout}`);
    const same = (await dbFingerprint(r.out)).sha3 === source.sha3;
    await Deno.remove(r.out);
    return same;
  }, 30_000);
}

/** SIGTERM; asserts exit 0 within 10 s. */
async function stopCleanly(watch: WalsyncProcess): Promise<string> {
  const stopped = await watch.stop("SIGTERM");
  assert.equal(stopped.code, 0, stopped.log);
  assert.ok(stopped.ms < 10_000, `took ${stopped.ms} ms to stop`);
  return stopped.log;
}

/** Metadata of every segment of `db`, in txid order. */
async function segmentMetadata(bucket: TestBucket, db: string) {
  const out: Record<string, string>[] = [];
  for (const key of await segmentKeys(bucket, db)) out.push((await bucket.read(key)).metadata);
  return out.sort((a, b) => Number(a["walsync-txid-first"]) - Number(b["walsync-txid-first"]));
}

for (const backend of backends) {
  const name = backend.name;

  Deno.test(
    `${name}: commits made while watch runs are shipped as they happen; SIGTERM exits 0 within 10 s; the restore is exact`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      const watch = startWatch(bucket, [db]);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 300, rows: 3, blobMax: 3000, pause: 0.002 });
        assert.equal(await transactionsOf(db, "w"), 300);
        // Still running: a restore now already holds every commit (shipped, not flushed at exit).
        await waitCaughtUp(bucket, db, "app.db", dir);
        assert.ok((await segmentKeys(bucket)).length >= 3, "shipped in several segments");
        const log = await stopCleanly(watch);
        assert.match(log, /stopping: shipping what is pending signal=SIGTERM/);
        assert.doesNotMatch(log, / (ERROR|WARN) /);
        await assertRestoresExactly(bucket, db, "app.db", dir);
        assert.deepEqual((await generationsOf(bucket, "app.db")).length, 1);
      } finally {
        await watch.kill();
      }
    },
  );

  Deno.test(
    `${name}: the application forcing wal_checkpoint(TRUNCATE) every 5 commits restarts the WAL; the generation continues and the restore is exact`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      const watch = startWatch(bucket, [db]);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, {
          transactions: 100,
          extra: { every: 5, sql: "PRAGMA wal_checkpoint(TRUNCATE);" },
        });
        await waitCaughtUp(bucket, db, "app.db", dir);
        await stopCleanly(watch);
        await assertRestoresExactly(bucket, db, "app.db", dir);
        // The checkpoints really restarted the WAL (new salts), and that did not need a new generation.
        const salts = new Set(
          (await segmentMetadata(bucket, "app.db")).map((m) => m["walsync-salt"]),
        );
        assert.ok(salts.size >= 5, `only ${salts.size} WAL restarts seen`);
        assert.equal((await generationsOf(bucket, "app.db")).length, 1, watch.log());
        const v = await walsync(["verify", "app.db", "--bucket", bucket.arg], { env: bucket.env });
        assert.equal(v.code, 0, v.stdout + v.stderr);
      } finally {
        await watch.kill();
      }
    },
  );

  Deno.test(
    `${name}: VACUUM in WAL mode (the file shrinks) between writes restores exact`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      const watch = startWatch(bucket, [db]);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 60, rows: 5, blobMax: 8000 });
        const before = Number(await sqlite(db, "PRAGMA page_count;"));
        await sqlite(db, ".timeout 10000\nDELETE FROM events WHERE n % 3 <> 0;\nVACUUM;");
        const after = Number(await sqlite(db, "PRAGMA page_count;"));
        assert.ok(after < before / 2, `VACUUM shrank ${before} to ${after} pages`);
        await waitCaughtUp(bucket, db, "app.db", dir);
        await writer(db, { transactions: 20, tag: "after-vacuum" });
        await stopCleanly(watch);
        const out = await assertRestoresExactly(bucket, db, "app.db", dir);
        assert.equal(
          await sqlite(out, "PRAGMA page_count;"),
          await sqlite(db, "PRAGMA page_count;"),
        );
      } finally {
        await watch.kill();
      }
    },
  );

  Deno.test(
    `${name}: a page size change cannot happen while watch runs (the app gets "database is locked"); done while it is stopped, the next watch starts a new generation and both points restore`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      let watch = startWatch(bucket, [db]);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 30, tag: "p4096" });
        // Changing the page size of a WAL database needs journal_mode=DELETE, which needs every
        // other connection gone. Watch holds three, so SQLite refuses: SQLITE_BUSY, nothing changes.
        const leave = await sqliteTry(db, "PRAGMA journal_mode=DELETE;", 500);
        assert.notEqual(leave.code, 0);
        assert.match(leave.stderr, /database is locked/);
        // In WAL mode VACUUM ignores a new page_size: the file keeps 4096-byte pages.
        await sqlite(db, ".timeout 10000\nPRAGMA page_size=1024;\nVACUUM;");
        assert.equal(await sqlite(db, "PRAGMA journal_mode;"), "wal");
        assert.equal(await sqlite(db, "PRAGMA page_size;"), "4096");
        await writer(db, { transactions: 10, tag: "p4096b" });
        await waitCaughtUp(bucket, db, "app.db", dir);
        await stopCleanly(watch);
        const at4096 = await dbFingerprint(db);
        const lastTxid4096 = await maxStoredTxid(bucket, "app.db");

        // Stopped: the change goes through.
        await sqlite(
          db,
          "PRAGMA journal_mode=DELETE;\nPRAGMA page_size=1024;\nVACUUM;\nPRAGMA journal_mode=WAL;",
        );
        assert.equal(await sqlite(db, "PRAGMA page_size;"), "1024");
        watch = startWatch(bucket, [db]);
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 30, tag: "p1024" });
        await stopCleanly(watch);
        assert.equal((await generationsOf(bucket, "app.db")).length, 2);
        const latest = await assertRestoresExactly(bucket, db, "app.db", dir);
        assert.equal(await sqlite(latest, "PRAGMA page_size;"), "1024");
        const old = await restoreTo(bucket, "app.db", dir, ["--txid", String(lastTxid4096)]);
        assert.equal(await sqlite(old, "PRAGMA page_size;"), "4096");
        assert.equal((await dbFingerprint(old)).sha3, at4096.sha3);
      } finally {
        await watch.kill();
      }
    },
  );

  Deno.test(
    `${name}: the database deleted with its -wal and -shm and created again with new content: a new generation, and the restore is the new content`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      const watch = startWatch(bucket, [db]);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 40, tag: "old" });
        await waitCaughtUp(bucket, db, "app.db", dir);
        for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(db + suffix);
        await sqlite(db, appSchema);
        await writer(db, { transactions: 40, tag: "new" });
        // Whichever the next sync noticed first: the file gone, a new inode, or the WAL gone.
        await watch.waitForLog(/generation started/, { count: 2 });
        assert.match(
          watch.log().split("\n").filter((l) => l.includes("generation started"))[1],
          /reason="(database file replaced|database file deleted|the WAL file disappeared while watched)"/,
        );
        await writer(db, { transactions: 20, tag: "new2" });
        // The application's new database lost nothing to our old connections closing.
        assert.equal(await transactionsOf(db, "new"), 40);
        assert.equal(await transactionsOf(db, "new2"), 20);
        assert.equal(await transactionsOf(db, "old"), 0);
        await waitCaughtUp(bucket, db, "app.db", dir);
        await stopCleanly(watch);
        assert.equal(await sqlite(db, "PRAGMA integrity_check;"), "ok");
        await assertRestoresExactly(bucket, db, "app.db", dir);
        assert.ok((await generationsOf(bucket, "app.db")).length >= 2);
      } finally {
        await watch.kill();
      }
    },
  );

  Deno.test(
    `${name}: watch killed with SIGKILL three times during writes and restarted each time: the restore is exact and txids continue across generations`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      let watch = startWatch(bucket, [db]);
      const stopFile = join(dir, "stop-writing");
      const writing = writer(db, { transactions: 100_000, pause: 0.01, stopFile });
      let writerDone = false;
      writing.finally(() => (writerDone = true)).catch(() => {});
      try {
        for (let kill = 0; kill < 3; kill++) {
          await watch.waitForLog(/snapshot uploaded/);
          const shipped = await maxStoredTxid(bucket, "app.db");
          await waitUntil(
            "segments shipped",
            async () => (await maxStoredTxid(bucket, "app.db")) > shipped + 5,
          );
          await watch.stop("SIGKILL");
          assert.ok(!writerDone, "the writer must still be writing at each kill");
          await sleep(200); // commits while nothing watches
          watch = startWatch(bucket, [db]);
        }
        await watch.waitForLog(/snapshot uploaded/);
        await Deno.writeTextFile(stopFile, "");
        await writing;
        await waitCaughtUp(bucket, db, "app.db", dir);
        await stopCleanly(watch);
        const committed = Number(await sqlite(db, "SELECT max(n) FROM events;"));
        assert.ok(committed > 50, `${committed} transactions`);
        assert.equal(await transactionsOf(db, "w"), committed);
        await assertRestoresExactly(bucket, db, "app.db", dir);
        // Four generations; each snapshot starts just past everything stored before it.
        const objects = await storedObjects(bucket, "app.db");
        const generations = [...new Set(objects.map((o) => o.generation))].sort();
        assert.equal(generations.length, 4, watch.log());
        let previousMax = -1;
        for (const g of generations) {
          const mine = objects.filter((o) => o.generation === g);
          const snapshot = mine.find((o) => o.kind === "snapshot")!;
          assert.equal(snapshot.firstTxid, previousMax + 1, `${snapshot.key} continues the txids`);
          previousMax = Math.max(...mine.map((o) => o.lastTxid));
        }
        const v = await walsync(["verify", "app.db", "--bucket", bucket.arg], { env: bucket.env });
        assert.equal(v.code, 0, v.stdout + v.stderr);
      } finally {
        await Deno.writeTextFile(stopFile, "");
        await watch.kill();
        await writing.catch(() => {});
      }
    },
  );

  Deno.test(
    `${name}: restore --timestamp T holds exactly the commits before T; --txid N from list --generations holds exactly the commits up to N`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      const watch = startWatch(bucket, [db], { syncInterval: "100ms" });
      try {
        await watch.waitForLog(/snapshot uploaded txid=0|snapshot uploaded/);
        // One row per transaction; txid k (k ≥ 1) is transaction n = k of tag "before".
        await writer(db, { transactions: 20, tag: "before", rows: 1, pause: 0.05 });
        await waitUntil(
          "the 20 commits shipped",
          async () => (await maxStoredTxid(bucket, "app.db")) >= 20,
        );
        const atT = await dbFingerprint(db);
        await sleep(300); // > 2 sync intervals
        const t = new Date().toISOString();
        await sleep(300);
        await writer(db, { transactions: 20, tag: "after", rows: 1, pause: 0.02 });
        await waitUntil(
          "the next 20 commits shipped",
          async () => (await maxStoredTxid(bucket, "app.db")) >= 40,
        );

        const byTime = await restoreTo(bucket, "app.db", dir, ["--timestamp", t]);
        assert.equal((await dbFingerprint(byTime)).sha3, atT.sha3);
        assert.equal(await transactionsOf(byTime, "after"), 0);
        assert.equal(await transactionsOf(byTime, "before"), 20);

        const list = await walsync(
          ["list", "app.db", "--bucket", bucket.arg, "--generations", "--json"],
          { env: bucket.env },
        );
        assert.equal(list.code, 0, list.stderr);
        const points: { kind: string; txidFirst: number; txidLast: number }[] =
          JSON.parse(list.stdout).points;
        const wal = points.filter((p) => p.kind === "wal");
        assert.ok(wal.length >= 4, `${wal.length} segments`);
        // Segment boundaries, and (when a segment holds several commits) a txid inside one.
        const targets = new Set<number>([wal[1].txidLast, wal[wal.length - 2].txidLast]);
        const multi = wal.find((p) => p.txidLast > p.txidFirst);
        if (multi) targets.add(multi.txidFirst);
        for (const txid of targets) {
          const out = await restoreTo(bucket, "app.db", dir, ["--txid", String(txid)]);
          assert.equal(await sqlite(out, "PRAGMA integrity_check;"), "ok");
          const rows = await sqlite(
            out,
            "SELECT count(*) || ' ' || coalesce(max(n), 0) FROM events WHERE tag = 'before';",
          );
          const after = await sqlite(
            out,
            "SELECT count(*) || ' ' || coalesce(max(n), 0) FROM events WHERE tag = 'after';",
          );
          if (txid <= 20) {
            assert.equal(rows, `${txid} ${txid}`, `--txid ${txid}`);
            assert.equal(after, "0 0", `--txid ${txid}`);
          } else {
            assert.equal(rows, "20 20", `--txid ${txid}`);
            assert.equal(after, `${txid - 20} ${txid - 20}`, `--txid ${txid}`);
          }
        }
        await stopCleanly(watch);
      } finally {
        await watch.kill();
      }
    },
  );

  Deno.test(
    `${name}: 50 databases in one watch, written concurrently by 5 loops over 10 databases each, each restore exact`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const names = Array.from({ length: 50 }, (_, i) => `db${String(i).padStart(2, "0")}.db`);
      const dbs = names.map((n) => join(dir, n));
      await bash(`schema="$1"; shift; for f in "$@"; do sqlite3 "$f" "$schema" >/dev/null; done`, [
        appSchema,
        ...dbs,
      ]);
      const watch = startWatch(bucket, dbs, { syncInterval: "200ms" });
      try {
        await watch.waitForLog(/snapshot uploaded/, { count: 50, timeoutMs: 60_000 });
        const loop = `
for t in 1 2 3 4; do
  for f in "$@"; do
    sqlite3 -bail -cmd ".timeout 10000" "$f" "INSERT INTO events(tag, n, body, data)
      SELECT 'loop', $t, '$f ' || value, randomblob(abs(random()) % 4000)
      FROM generate_series(1, 1 + abs(random()) % 20);" >/dev/null
  done
done`;
        await Promise.all(
          [0, 1, 2, 3, 4].map((g) => bash(loop, dbs.slice(g * 10, g * 10 + 10))),
        );
        await waitUntil("every database shipped its 4 transactions", async () => {
          const keys = await segmentKeys(bucket);
          return names.every((n) => {
            const last = keys.map(parseStoredKey).filter((k) => k?.db === n).map((k) =>
              k!.lastTxid
            );
            return Math.max(-1, ...last) >= 4;
          });
        }, 60_000);
        await stopCleanly(watch);
        // Fifty restores through the CLI would spend most of a minute starting Deno; the same
        // restore code runs in this process instead (the CLI path is covered by every other test).
        const storage = await openBucket(bucket.arg, {
          endpoint: bucket.env.AWS_ENDPOINT_URL_S3,
          credentials: bucket.env.AWS_ACCESS_KEY_ID
            ? {
              accessKeyId: bucket.env.AWS_ACCESS_KEY_ID,
              secretAccessKey: bucket.env.AWS_SECRET_ACCESS_KEY,
            }
            : undefined,
        });
        try {
          const pending = [...names];
          await Promise.all([0, 1, 2, 3].map(async () => {
            for (let n = pending.shift(); n !== undefined; n = pending.shift()) {
              const out = join(dir, `${n}.restored`);
              const result = await restoreDatabase(storage, n, { output: out });
              assert.equal(result.integrityCheck, "ok");
              assert.equal(result.txid, await maxStoredTxid(bucket, n));
              const [want, got] = await Promise.all([
                dbFingerprint(join(dir, n)),
                dbFingerprint(out),
              ]);
              assert.equal(got.integrity, "ok", n);
              assert.equal(got.sha3, want.sha3, `${n} restores exactly`);
            }
          }));
        } finally {
          storage.close();
        }
      } finally {
        await watch.kill();
      }
    },
  );

  Deno.test(
    `${name}: a corrupted, a deleted and a reordered WAL segment each make verify and restore exit 5 naming it, with nothing written`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      const watch = startWatch(bucket, [db]);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        for (let batch = 0; batch < 4; batch++) {
          const before = (await segmentKeys(bucket)).length;
          await writer(db, { transactions: 3, tag: `b${batch}` });
          await waitUntil("a new segment", async () => (await segmentKeys(bucket)).length > before);
        }
        await stopCleanly(watch);
      } finally {
        await watch.kill();
      }
      const segs = await segmentKeys(bucket, "app.db");
      assert.ok(segs.length >= 4);
      const [, victim, next] = segs;
      const original = { victim: await bucket.read(victim), next: await bucket.read(next) };
      const firstTxid = (key: string) => parseStoredKey(key)!.firstTxid;

      const expectExit5 = async (what: string, mustName: string[]) => {
        const v = await walsync(["verify", "app.db", "--bucket", bucket.arg], { env: bucket.env });
        assert.equal(v.code, 5, `${what}: verify\n${v.stdout}${v.stderr}`);
        for (const s of mustName) {
          assert.ok(v.stdout.includes(s), `${what}: verify names ${s}:\n${v.stdout}`);
        }
        const outDir = await Deno.makeTempDir({ dir, prefix: "out-" });
        const r = await walsync(
          ["restore", "app.db", "--bucket", bucket.arg, "-o", join(outDir, "app.db")],
          { env: bucket.env },
        );
        assert.equal(r.code, 5, `${what}: restore\n${r.stdout}${r.stderr}`);
        assert.ok(
          r.stderr.includes(mustName[0]),
          `${what}: restore names ${mustName[0]}:\n${r.stderr}`,
        );
        assert.deepEqual(await filesIn(outDir), [], `${what}: nothing written`);
      };
      const putBack = async () => {
        await bucket.write(victim, original.victim);
        await bucket.write(next, original.next);
        const v = await walsync(["verify", "app.db", "--bucket", bucket.arg], { env: bucket.env });
        assert.equal(v.code, 0, v.stdout + v.stderr);
      };
      await putBack();

      // One flipped byte in the middle of a frame.
      const flipped = original.victim.bytes.slice();
      flipped[Math.floor(flipped.length / 2)] ^= 0x01;
      await bucket.write(victim, { bytes: flipped, metadata: original.victim.metadata });
      await expectExit5("corrupted", [victim]);
      await putBack();

      // Deleted: the gap is named by the segment after it and the txid that is missing.
      await removeObject(bucket, victim);
      await expectExit5("deleted", [next, `txid ${firstTxid(victim)}`]);
      await putBack();

      // Reordered: each key holds the other's bytes and metadata.
      await bucket.write(victim, original.next);
      await bucket.write(next, original.victim);
      await expectExit5("reordered", [victim, next]);
      await putBack();
      await assertRestoresExactly(bucket, db, "app.db", dir);
    },
  );

  // Litestream #752 (https://github.com/benbjohnson/litestream/issues/752): restore failed with
  // "nonsequential page numbers" after the application ran a TRUNCATE checkpoint while the
  // replicator was down. Here the WAL is truncated to zero bytes while nothing watches.
  Deno.test(
    `${name}: the application checkpoints with TRUNCATE while watch is killed; after the restart the restore is exact`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      let watch = startWatch(bucket, [db]);
      const app = sqliteSession(db);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 30, tag: "up" });
        await waitCaughtUp(bucket, db, "app.db", dir);
        await watch.stop("SIGKILL");
        // The application server keeps its connection, so the WAL file stays; with no reader
        // left, its TRUNCATE checkpoints complete and empty it.
        await app.run("PRAGMA journal_mode;");
        await writer(db, {
          transactions: 30,
          tag: "down",
          extra: { every: 10, sql: "PRAGMA wal_checkpoint(TRUNCATE);" },
        });
        await app.run("INSERT INTO events(tag, n) VALUES ('down-last', 1);");
        assert.equal(await app.run("PRAGMA wal_checkpoint(TRUNCATE);"), "0|0|0");
        assert.equal((await Deno.stat(`${db}-wal`)).size, 0);
        await app.run("INSERT INTO events(tag, n) VALUES ('down-after-truncate', 1);");
        watch = startWatch(bucket, [db]);
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 30, tag: "after" });
        await waitCaughtUp(bucket, db, "app.db", dir);
        await stopCleanly(watch);
        await assertRestoresExactly(bucket, db, "app.db", dir);
        const v = await walsync(["verify", "app.db", "--bucket", bucket.arg], { env: bucket.env });
        assert.equal(v.code, 0, v.stdout + v.stderr);
      } finally {
        await app.close();
        await watch.kill();
      }
    },
  );

  // Litestream #781 (https://github.com/benbjohnson/litestream/issues/781): after restoring a
  // database and replicating it again into the same place, new writes were not backed up
  // because the transaction counter restarted below the stored high-water mark.
  Deno.test(
    `${name}: a database restored over the original and watched again into the same bucket keeps being backed up`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      let watch = startWatch(bucket, [db]);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        await writer(db, { transactions: 30, tag: "first-life" });
        await stopCleanly(watch);
        const stored = await maxStoredTxid(bucket, "app.db");
        for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(db + suffix).catch(() => {});
        const r = await walsync(["restore", "app.db", "--bucket", bucket.arg, "-o", db], {
          env: bucket.env,
        });
        assert.equal(r.code, 0, r.stderr);
        watch = startWatch(bucket, [db]);
        await watch.waitForLog(new RegExp(`generation started .*txid=${stored + 1}\\b`));
        await writer(db, { transactions: 30, tag: "second-life" });
        await waitCaughtUp(bucket, db, "app.db", dir);
        await stopCleanly(watch);
        const out = await assertRestoresExactly(bucket, db, "app.db", dir);
        assert.equal(await transactionsOf(out, "first-life"), 30);
        assert.equal(await transactionsOf(out, "second-life"), 30);
      } finally {
        await watch.kill();
      }
    },
  );

  // LiteFS #205 (https://github.com/superfly/litefs/pull/205) and Litestream #33
  // (https://github.com/benbjohnson/litestream/pull/33): a shipper that reads the WAL while a
  // transaction is still writing it must not take frames of an unfinished transaction. With
  // a tiny page cache SQLite spills the open transaction's pages into the WAL long before
  // COMMIT; a ROLLBACK leaves them there and the next transaction overwrites them.
  Deno.test(
    `${name}: frames of a transaction still open (spilled to the WAL) or rolled back are never shipped; a spilled transaction that commits is`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      await writer(db, { transactions: 10, tag: "base" });
      const watch = startWatch(bucket, [db]);
      const app = sqliteSession(db);
      try {
        await watch.waitForLog(/snapshot uploaded/);
        const walBefore = (await Deno.stat(`${db}-wal`)).size;
        await app.run(
          `PRAGMA cache_size=10;
           BEGIN;
           INSERT INTO events(tag, n, body, data)
             SELECT 'rolled-back', value, 'x', randomblob(2000) FROM generate_series(1, 2000);`,
        );
        assert.ok((await Deno.stat(`${db}-wal`)).size > walBefore + 2_000_000, "pages spilled");
        const committed = await dbFingerprint(db);
        await sleep(500); // several syncs see the spilled frames
        const during = await restoreTo(bucket, "app.db", dir);
        assert.equal((await dbFingerprint(during)).sha3, committed.sha3);
        await app.run("ROLLBACK;");
        await app.run(
          `BEGIN;
           INSERT INTO events(tag, n, body, data)
             SELECT 'spilled-commit', value, 'y', randomblob(1500) FROM generate_series(1, 1500);`,
        );
        await sleep(500);
        await app.run("COMMIT;");
        await app.close();
        await writer(db, { transactions: 10, tag: "later" });
        await waitCaughtUp(bucket, db, "app.db", dir);
        await stopCleanly(watch);
        const out = await assertRestoresExactly(bucket, db, "app.db", dir);
        assert.equal(await transactionsOf(out, "rolled-back"), 0);
        assert.equal(await transactionsOf(out, "spilled-commit"), 1500);
      } finally {
        await app.close();
        await watch.kill();
      }
    },
  );
}

Deno.test(
  "file: a writer committing as fast as it can (120k tiny transactions, hundreds of MB of WAL, checkpoints and restarts while watch is behind) restores exactly",
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const watch = startWatch(bucket, [db], { syncInterval: "1s" });
    try {
      await watch.waitForLog(/snapshot uploaded/);
      // One process, one connection, autocommit INSERTs with the application's usual
      // settings (synchronous=NORMAL, automatic checkpoints on): the WAL grows faster than
      // watch reads it, so watch is behind while its own and the writer's checkpoints run.
      const code = `
        import { DatabaseSync } from "node:sqlite";
        const db = new DatabaseSync(${JSON.stringify(db)}, { timeout: 10000 });
        db.exec("PRAGMA synchronous=NORMAL");
        const insert = db.prepare("INSERT INTO events(tag, n, body) VALUES ('fast', ?, 'x')");
        for (let i = 1; i <= 120000; i++) insert.run(i);
        db.close();`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        stdin: "null",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      assert.equal(await transactionsOf(db, "fast"), 120000);
      await waitCaughtUp(bucket, db, "app.db", dir);
      await stopCleanly(watch);
      await assertRestoresExactly(bucket, db, "app.db", dir);
      assert.equal((await generationsOf(bucket, "app.db")).length, 1, watch.log());
    } finally {
      await watch.kill();
    }
  },
);

Deno.test(
  "file: a backlog of many segments written faster than one sync (one sqlite3 process, 60 MB of WAL) is shipped whole once the writer stops, in segments that each end on a commit",
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const watch = startWatch(bucket, [db], { syncInterval: "1s" });
    try {
      await watch.waitForLog(/snapshot uploaded/);
      // 5000 autocommit transactions of about 12 KB each, in one process: the WAL holds far
      // more than one 16 MiB segment by the time watch looks again.
      const script = Array.from(
        { length: 5000 },
        (_, i) =>
          `INSERT INTO events(tag, n, body, data) VALUES ('bulk', ${
            i + 1
          }, 'b', randomblob(12000));`,
      ).join("\n");
      await Deno.writeTextFile(join(dir, "bulk.sql"), `PRAGMA synchronous=NORMAL;\n${script}`);
      const out = await new Deno.Command("sqlite3", {
        args: ["-bail", "-cmd", ".timeout 10000", "-cmd", `.read ${join(dir, "bulk.sql")}`, db],
        stdin: "null",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      assert.equal(await transactionsOf(db, "bulk"), 5000);
      await waitCaughtUp(bucket, db, "app.db", dir);
      const segments = await segmentMetadata(bucket, "app.db");
      const largest = Math.max(...segments.map((m) => Number(m["walsync-decoded-size"] ?? 0)));
      assert.ok(largest <= 17 * 1024 * 1024, `a segment of ${largest} bytes`);
      assert.equal(Math.max(...segments.map((m) => Number(m["walsync-txid-last"]))), 5000);
      await stopCleanly(watch);
      await assertRestoresExactly(bucket, db, "app.db", dir);
    } finally {
      await watch.kill();
    }
  },
);

Deno.test(
  "file: watch checkpoints the WAL itself past --checkpoint-size, keeping it small, and leaves an idle database alone",
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const watch = startWatch(bucket, [db], { args: ["--checkpoint-size", "65536"] });
    try {
      await watch.waitForLog(/snapshot uploaded/);
      await writer(db, { transactions: 200, rows: 3, blobMax: 3000 });
      await waitCaughtUp(bucket, db, "app.db", dir);
      const checkpoints = () => (watch.log().match(/ checkpointed /g) ?? []).length;
      assert.ok(checkpoints() >= 3, watch.log());
      // Several MB of WAL were committed, and the file was reused after each checkpoint
      // rather than growing with them: it stays a fraction of the total.
      const shippedWal = (await segmentMetadata(bucket, "app.db"))
        .reduce((sum, m) => sum + Number(m["walsync-frames"]) * (24 + 4096), 0);
      const walSize = (await Deno.stat(`${db}-wal`)).size;
      assert.ok(shippedWal > 2_000_000, `${shippedWal} bytes of WAL shipped`);
      assert.ok(walSize < shippedWal / 3, `WAL of ${walSize} bytes after ${shippedWal}`);
      // Idle: ten sync intervals, no more checkpoints (nor write locks) until someone writes.
      const idle = checkpoints();
      await sleep(1000);
      assert.equal(checkpoints(), idle, watch.log());
      await writer(db, { transactions: 30, tag: "again" });
      await waitCaughtUp(bucket, db, "app.db", dir);
      await stopCleanly(watch);
      await assertRestoresExactly(bucket, db, "app.db", dir);
    } finally {
      await watch.kill();
    }
  },
);

Deno.test(
  "file: --snapshot-interval starts a fresh generation on schedule while writes go on; the latest and an earlier generation restore",
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const watch = startWatch(bucket, [db], { args: ["--snapshot-interval", "700ms"] });
    try {
      await watch.waitForLog(/snapshot uploaded/);
      const writing = writer(db, {
        transactions: 100_000,
        pause: 0.01,
        stopFile: join(dir, "stop"),
      });
      await watch.waitForLog(/generation started .*reason="snapshot interval"/, { count: 2 });
      await Deno.writeTextFile(join(dir, "stop"), "");
      await writing;
      await waitCaughtUp(bucket, db, "app.db", dir);
      await stopCleanly(watch);
      await assertRestoresExactly(bucket, db, "app.db", dir);
      // The end of the first generation is still a valid point in time.
      const objects = await storedObjects(bucket, "app.db");
      const first = objects.filter((o) => o.generation === objects[0].generation);
      const end = Math.max(...first.map((o) => o.lastTxid));
      const old = await restoreTo(bucket, "app.db", dir, ["--txid", String(end)]);
      assert.equal(await sqlite(old, "PRAGMA integrity_check;"), "ok");
      const rows = Number(await sqlite(old, "SELECT count(DISTINCT n) FROM events;"));
      assert.equal(await sqlite(old, "SELECT max(n) FROM events;"), String(rows));
      assert.ok(rows > 0 && rows < Number(await sqlite(db, "SELECT max(n) FROM events;")));
      const v = await walsync(["verify", "app.db", "--bucket", bucket.arg], { env: bucket.env });
      assert.equal(v.code, 0, v.stdout + v.stderr);
    } finally {
      await Deno.writeTextFile(join(dir, "stop"), "");
      await watch.kill();
    }
  },
);

// A file:// upload used to rename the data into place before writing `<key>.meta.json`: a
// restore or verify listing the bucket in that moment exited 5 ("sha256 metadata is missing")
// on a healthy backup, and a watch killed then left the object so for good. Fixed in 686dff4
// (metadata first); this keeps it fixed.
Deno.test({
  name:
    "file: a reader listing the bucket while watch uploads never finds an object without its metadata",
  async fn() {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const watch = startWatch(bucket, [db], { syncInterval: "10ms" });
    const stopFile = join(dir, "stop");
    const storage = await openBucket(bucket.arg);
    try {
      await watch.waitForLog(/snapshot uploaded/);
      const writing = writer(db, { transactions: 100_000, stopFile });
      const halfWritten = new Set<string>();
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        // Layout objects (the head and lease are small JSON written whole, without metadata).
        for await (const info of storage.list("app.db/generations/")) {
          const head = await storage.head(info.key);
          if (head && head.metadata.sha256 === undefined) halfWritten.add(info.key);
        }
      }
      await Deno.writeTextFile(stopFile, "");
      await writing;
      assert.deepEqual([...halfWritten], [], "listed without metadata");
      await stopCleanly(watch);
    } finally {
      await Deno.writeTextFile(stopFile, "");
      storage.close();
      await watch.kill();
    }
  },
});

Deno.test(
  "s3: MinIO stopped for 20 s while writes continue: watch logs the lag, retries, catches up, and the restore is exact",
  sdkTest,
  async () => {
    const server = await startMinio();
    const bucket = s3BucketOn(server);
    const dir = await workDir();
    const db = await appDatabase(dir);
    const watch = startWatch(bucket, [db]);
    try {
      await watch.waitForLog(/snapshot uploaded/);
      await writer(db, { transactions: 20, tag: "before" });
      await waitUntil(
        "the first commits shipped",
        async () => (await maxStoredTxid(bucket, "app.db")) >= 20,
      );
      await server.pause();
      const down = Date.now();
      const writing = writer(db, { transactions: 120, tag: "outage", pause: 0.1 });
      await watch.waitForLog(/sync failed; will retry .*lag_seconds=\d+/);
      await sleep(Math.max(0, 20_000 - (Date.now() - down)));
      await server.resume();
      await writing;
      await watch.waitForLog(/caught up .*lag_seconds=\d+/, { timeoutMs: 45_000 });
      const lag = Number(/caught up .*lag_seconds=(\d+)/.exec(watch.log())![1]);
      assert.ok(lag >= 15, `caught up after a lag of ${lag} s`);
      const retries = [...watch.log().matchAll(/sync failed; will retry .*lag_seconds=(\d+)/g)]
        .map((m) => Number(m[1]));
      assert.ok(retries.length >= 3, `${retries.length} retries logged`);
      assert.ok(retries.at(-1)! >= retries[0], "the lag grows while storage is down");
      await writer(db, { transactions: 10, tag: "after" });
      await waitCaughtUp(bucket, db, "app.db", dir);
      await stopCleanly(watch);
      await assertRestoresExactly(bucket, db, "app.db", dir);
      assert.equal(await transactionsOf(db, "outage"), 120);
      assert.equal((await generationsOf(bucket, "app.db")).length, 1, "no new generation needed");
    } finally {
      await watch.kill();
      bucket.client.destroy();
      await server.stop();
    }
  },
);

Deno.test(
  "s3: SIGTERM while MinIO is down ends watch within 10 s and says what was not shipped; the next watch ships it",
  sdkTest,
  async () => {
    const server = await startMinio();
    const bucket = s3BucketOn(server);
    const dir = await workDir();
    const db = await appDatabase(dir);
    let watch = startWatch(bucket, [db]);
    try {
      await watch.waitForLog(/snapshot uploaded/);
      await writer(db, { transactions: 10, tag: "before" });
      await waitUntil(
        "the first commits shipped",
        async () => (await maxStoredTxid(bucket, "app.db")) >= 10,
      );
      await server.pause();
      await writer(db, { transactions: 10, tag: "unshipped" });
      await watch.waitForLog(/sync failed; will retry/);
      const stopped = await watch.stop("SIGTERM");
      assert.ok(stopped.ms < 10_500, `took ${stopped.ms} ms to stop`);
      assert.match(stopped.log, /final sync failed/);
      assert.equal(
        stopped.code,
        1,
        "unshipped commits at exit are a failure a service manager sees",
      );
      await server.resume();
      watch = startWatch(bucket, [db]);
      await watch.waitForLog(/snapshot uploaded/);
      await stopCleanly(watch);
      await assertRestoresExactly(bucket, db, "app.db", dir);
    } finally {
      await watch.kill();
      bucket.client.destroy();
      await server.stop();
    }
  },
);
