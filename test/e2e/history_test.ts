/**
 * One anchored history per database (issue 11), on `file://` and on S3 (MinIO): a head that
 * says where the history ends, a lease that keeps a second writer out, txids that mean one
 * thing, names checked once, and optional signatures. Each scenario gave a wrong state with
 * exit 0 before heads existed.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHistoryWriter } from "../../src/history/writer.ts";
import type { Logger, LogLevel } from "../../src/support/log.ts";
import { backends, s3Bucket, sdkTest, storageOf, type TestBucket } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { removeObject } from "../support/layout.ts";
import { dbFingerprint, sqlite } from "../support/sqlite.ts";
import { sleep, waitUntil } from "../support/wait.ts";
import { assertRestoresExactly, startWatch, tryRestore, walsync } from "../support/walsync.ts";

const db = "app.db";

/** A database with `rows` rows in table t. */
async function makeDb(dir: string, rows: number): Promise<string> {
  const path = join(dir, db);
  await sqlite(
    path,
    `PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ${rows})
     INSERT INTO t(v) SELECT 'row ' || i FROM n;`,
  );
  return path;
}

async function insert(path: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await sqlite(path, `INSERT INTO t(v) VALUES ('more ${i}');`);
}

/** Highest txid any key of the bucket names (works on buckets with and without a head). */
async function highestKeyTxid(bucket: TestBucket): Promise<number> {
  let highest = -1;
  for (const key of await bucket.keys()) {
    const m = /\/(?:snapshots\/([0-9a-f]{16})\.db|wal\/[0-9a-f]{16}-([0-9a-f]{16})\.wal)$/.exec(
      key,
    );
    if (m) highest = Math.max(highest, parseInt(m[1] ?? m[2], 16));
  }
  return highest;
}

/**
 * Runs watch, does `work` (which makes `commits` commits), waits until segments hold them all,
 * and stops watch cleanly (which leaves the head on the last one).
 */
async function shipAll(
  bucket: TestBucket,
  path: string,
  commits: number,
  work: (path: string) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  const watch = startWatch(bucket, [path], { env });
  try {
    await watch.waitForLog(/snapshot uploaded/);
    const start = await highestKeyTxid(bucket);
    await work(path);
    await waitUntil(
      "segments to hold the last commit",
      async () => (await highestKeyTxid(bucket)) >= start + commits,
    );
  } finally {
    const stopped = await watch.stop();
    assert.equal(stopped.code, 0, stopped.log);
  }
}

/** Waits for a process expected to exit on its own; kills it after `ms` (a refusal is quick). */
async function exitWithin(
  watch: ReturnType<typeof startWatch>,
  ms = 15_000,
): Promise<{ code: number; log: string }> {
  const timer = setTimeout(() => watch.kill(), ms);
  try {
    // SIGCONT does nothing to a running process: stop() then just waits for its exit.
    return await watch.stop("SIGCONT");
  } finally {
    clearTimeout(timer);
  }
}

/** Writes a raw object (no Walsync code), creating directories on `file://`. */
async function plant(
  bucket: TestBucket,
  key: string,
  object: { bytes: Uint8Array; metadata: Record<string, string> },
): Promise<void> {
  if (bucket.kind === "file") {
    const dir = (bucket as TestBucket & { dir: string }).dir;
    await Deno.mkdir(join(dir, key, ".."), { recursive: true });
  }
  await bucket.write(key, object);
}

async function rows(path: string): Promise<number> {
  return Number(await sqlite(path, "SELECT count(*) FROM t;"));
}

function segmentKeysOf(keys: string[]): string[] {
  return keys.filter((k) => k.endsWith(".wal"));
}

for (const backend of backends) {
  const t = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `${backend.name}: history: ${name}`, ...sdkTest, fn });

  t("deleting the newest WAL segment is an integrity error, not an older restore", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 5);
    await shipAll(bucket, path, 5, (p) => insert(p, 5));
    const segments = segmentKeysOf(await bucket.keys());
    assert.ok(segments.length > 0, "watch shipped segments");
    const tail = segments.at(-1)!;
    await removeObject(bucket, tail);
    const restored = await tryRestore(bucket, db, dir);
    assert.equal(restored.code, 5, restored.stdout + restored.stderr);
    assert.match(restored.stderr, new RegExp(tail.replace(/[.]/g, "\\.")));
    const verified = await walsync(["verify", db, "--bucket", bucket.arg], { env: bucket.env });
    assert.equal(verified.code, 5, verified.stdout + verified.stderr);
  });

  t("a snapshot planted in a newer generation is never restored", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 20);
    await shipAll(bucket, path, 3, (p) => insert(p, 3));
    // Another database's valid snapshot, with correct digest, under a newer generation.
    const other = join(dir, "other");
    await Deno.mkdir(other);
    const otherPath = await makeDb(other, 1);
    const otherBucket = await backend.make();
    const snap = await walsync(["snapshot", otherPath, "--bucket", otherBucket.arg], {
      env: otherBucket.env,
    });
    assert.equal(snap.code, 0, snap.stderr);
    const otherKey = (await otherBucket.keys()).find((k) => k.endsWith(".db"))!;
    const object = await otherBucket.read(otherKey);
    const planted = `${db}/generations/29991231T000000000Z-deadbeef/snapshots/00000000000f0000.db`;
    await plant(bucket, planted, {
      bytes: object.bytes,
      metadata: {
        ...object.metadata,
        "walsync-generation": "29991231T000000000Z-deadbeef",
        "walsync-txid": String(0xf0000),
      },
    });
    await assertRestoresExactly(bucket, path, db, dir);
    const verified = await walsync(["verify", db, "--bucket", bucket.arg, "--json"], {
      env: bucket.env,
    });
    assert.ok(JSON.parse(verified.stdout).unreached.includes(planted), verified.stdout);
  });

  t("a deleted head is an integrity error, not a fallback to the listing", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 5);
    await shipAll(bucket, path, 2, (p) => insert(p, 2));
    await removeObject(bucket, `${db}/head`);
    const restored = await tryRestore(bucket, db, dir);
    assert.equal(restored.code, 5, restored.stdout + restored.stderr);
    assert.match(restored.stderr, /head is missing/);
  });

  t("a head rolled back to an older copy is an integrity error", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 5);
    let old: Uint8Array | undefined;
    await shipAll(bucket, path, 4, async (p) => {
      old = (await bucket.read(`${db}/head`)).bytes;
      await insert(p, 4);
    });
    await sleep(1100); // storage times have one-second resolution on S3
    await bucket.write(`${db}/head`, { bytes: old!, metadata: {} });
    const restored = await tryRestore(bucket, db, dir);
    assert.equal(restored.code, 5, restored.stdout + restored.stderr);
    assert.match(restored.stderr, /rolled back/);
  });

  t("a late segment of an older generation does not outrank the new one", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 5);
    await shipAll(bucket, path, 3, (p) => insert(p, 3));
    const lastOld = segmentKeysOf(await bucket.keys()).at(-1)!;
    const firstGen = lastOld.split("/")[2];
    await shipAll(bucket, path, 3, (p) => insert(p, 3)); // second generation
    // An upload of the first process lands late, with txids past everything shipped.
    const late = (await highestKeyTxid(bucket)) + 5;
    const hex = late.toString(16).padStart(16, "0");
    const object = await bucket.read(lastOld);
    await plant(bucket, `${db}/generations/${firstGen}/wal/${hex}-${hex}.wal`, {
      bytes: object.bytes,
      metadata: {
        ...object.metadata,
        "walsync-txid-first": String(late),
        "walsync-txid-last": String(late),
      },
    });
    await assertRestoresExactly(bucket, path, db, dir);
  });
  t(
    "two watch processes: the second refuses, a crashed holder never blocks past its lease, --takeover",
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const path = await makeDb(dir, 5);
      const env = { WALSYNC_LEASE_SECONDS: "3" };
      const first = startWatch(bucket, [path], { env });
      const others: ReturnType<typeof startWatch>[] = [];
      const start = (args: string[] = []) => {
        const w = startWatch(bucket, [path], { env, args });
        others.push(w);
        return w;
      };
      try {
        await first.waitForLog(/snapshot uploaded/);
        const refused = await exitWithin(start());
        assert.equal(refused.code, 1, refused.log);
        assert.match(refused.log, new RegExp(`by \\S+ pid ${first.pid} since \\d{4}-`));
        assert.match(refused.log, /--takeover/);

        // SIGKILLed on this host: its process is gone, so a restart need not wait.
        await first.kill();
        const restarted = start();
        await restarted.waitForLog(/snapshot uploaded/);
        assert.equal((await restarted.stop()).code, 0);

        // A holder on another host that crashed: its lease is waited out, never longer.
        const lease = {
          "walsync-lease": 1,
          db,
          host: "db-host-2",
          pid: 4242,
          id: "x",
          since: new Date().toISOString(),
          expires: new Date(Date.now() + 3000).toISOString(),
        };
        await bucket.write(`${db}/lease`, {
          bytes: new TextEncoder().encode(JSON.stringify(lease)),
          metadata: {},
        });
        const blocked = await exitWithin(start());
        assert.equal(blocked.code, 1, blocked.log);
        assert.match(blocked.log, /db-host-2 pid 4242/);
        await sleep(3200);
        const third = start();
        await third.waitForLog(/snapshot uploaded/);

        // --takeover while the holder runs: the old holder stops writing, the history stays whole.
        const fourth = start(["--takeover"]);
        await fourth.waitForLog(/snapshot uploaded/);
        await third.waitForLog(/lost the lease|moved by another writer/, { timeoutMs: 15_000 });
        await insert(path, 3);
        await sleep(1500);
        assert.equal((await fourth.stop()).code, 0);
        await third.stop();
        await assertRestoresExactly(bucket, path, db, dir);
      } finally {
        await first.kill();
        for (const w of others) await w.kill();
      }
    },
  );

  t("a manual snapshot beside watch with retention refuses, and the present survives", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 40);
    const watch = startWatch(bucket, [path], { args: ["--retention", "1s"] });
    try {
      await watch.waitForLog(/snapshot uploaded/);
      const manual = await walsync(["snapshot", path, "--bucket", bucket.arg], {
        env: bucket.env,
      });
      assert.equal(manual.code, 1, manual.stdout + manual.stderr);
      assert.match(manual.stderr, new RegExp(`pid ${watch.pid}`));
      await insert(path, 10);
      await sleep(6500); // the first retention run comes after 5 s
      assert.equal((await watch.stop()).code, 0);
    } finally {
      await watch.kill();
    }
    assert.equal(await rows(path), 50);
    await assertRestoresExactly(bucket, path, db, dir);
  });

  t(
    "a junk key with txid ffffffffffffffff is an integrity error, not 2^64 arithmetic",
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const path = await makeDb(dir, 3);
      const junk = `${db}/generations/20200101T000000000Z-00000000/snapshots/ffffffffffffffff.db`;
      await plant(bucket, junk, {
        bytes: new Uint8Array(10),
        metadata: { sha256: "0".repeat(64) },
      });
      const snap = await walsync(["snapshot", path, "--bucket", bucket.arg], { env: bucket.env });
      assert.equal(snap.code, 5, snap.stdout + snap.stderr);
      assert.match(snap.stderr, /ffffffffffffffff/);
      assert.ok(!(await bucket.keys()).some((k) => /[0-9a-f]{17}/.test(k)), "no 17-digit key");
    },
  );

  t("snapshot --name a/b.db, and a restore of a/b.db, are usage errors", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 3);
    const snap = await walsync(["snapshot", path, "--bucket", bucket.arg, "--name", "a/b.db"], {
      env: bucket.env,
    });
    assert.equal(snap.code, 2, snap.stdout + snap.stderr);
    assert.match(snap.stderr, /not a valid database name/);
    assert.deepEqual(await bucket.keys(), []);
    const restored = await tryRestore(bucket, "a/b.db", dir);
    assert.equal(restored.code, 2, restored.stderr);
  });

  t("a signed history restores with its key and is exit 5 with a wrong one", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 5);
    const key = "correct horse battery staple";
    await shipAll(bucket, path, 3, (p) => insert(p, 3), { WALSYNC_SIGNING_KEY: key });
    const good = join(dir, "good.db");
    const ok = await walsync(["restore", db, "--bucket", bucket.arg, "-o", good, "--json"], {
      env: { ...bucket.env, WALSYNC_SIGNING_KEY: key },
    });
    assert.equal(ok.code, 0, ok.stderr);
    const result = JSON.parse(ok.stdout);
    assert.equal(result.signed, true);
    assert.equal(result.signatureChecked, true);
    assert.ok(!ok.stdout.includes(key) && !ok.stderr.includes(key));
    assert.deepEqual(await dbFingerprint(good), await dbFingerprint(path));
    const bad = await walsync(["restore", db, "--bucket", bucket.arg, "-o", join(dir, "b.db")], {
      env: { ...bucket.env, WALSYNC_SIGNING_KEY: "wrong key" },
    });
    assert.equal(bad.code, 5, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /signature/);
    const verified = await walsync(["verify", db, "--bucket", bucket.arg, "--json"], {
      env: { ...bucket.env, WALSYNC_SIGNING_KEY: "wrong key" },
    });
    assert.equal(verified.code, 5);
    assert.ok(!verified.stdout.includes(key));
    // A forged segment: someone with write access but no key re-signs nothing.
    const segment = segmentKeysOf(await bucket.keys()).at(-1)!;
    const object = await bucket.read(segment);
    const forged = { ...object.metadata, "walsync-signature": "0".repeat(64) };
    await bucket.write(segment, { bytes: object.bytes, metadata: forged });
    const rejected = await walsync(
      ["restore", db, "--bucket", bucket.arg, "-o", join(dir, "f.db")],
      { env: { ...bucket.env, WALSYNC_SIGNING_KEY: key } },
    );
    assert.equal(rejected.code, 5, rejected.stdout + rejected.stderr);
    assert.match(rejected.stderr, new RegExp(`${segment.replace(/[.]/g, "\\.")}: signature`));
  });

  t("restore compares a snapshot's walsync-txid with its key", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 3);
    const snap = await walsync(["snapshot", path, "--bucket", bucket.arg], { env: bucket.env });
    assert.equal(snap.code, 0, snap.stderr);
    const key = (await bucket.keys()).find((k) => k.endsWith(".db"))!;
    const object = await bucket.read(key);
    await bucket.write(key, {
      bytes: object.bytes,
      metadata: { ...object.metadata, "walsync-txid": "7" },
    });
    const restored = await tryRestore(bucket, db, dir);
    assert.equal(restored.code, 5, restored.stdout + restored.stderr);
    assert.match(restored.stderr, /txid in metadata differs from the key/);
  });

  t("a format 2 bucket (no head, no lease) still restores exactly", async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const path = await makeDb(dir, 5);
    await shipAll(bucket, path, 3, (p) => insert(p, 3));
    // Rewrite it as a format 2 writer left it: no head, no lease, no links.
    await removeObject(bucket, `${db}/head`);
    await removeObject(bucket, `${db}/lease`);
    for (const k of await bucket.keys()) {
      if (!k.includes("/generations/")) continue;
      const object = await bucket.read(k);
      const metadata: Record<string, string> = { ...object.metadata, "walsync-format": "2" };
      delete metadata["walsync-prev-key"];
      if (k.endsWith(".db")) delete metadata["walsync-prev-sha256"];
      await bucket.write(k, { bytes: object.bytes, metadata });
    }
    await assertRestoresExactly(bucket, path, db, dir);
  });
}

Deno.test({
  name: "probe: MinIO honours conditional writes (no WARN line)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const storage = await storageOf(await s3Bucket());
    const lines: string[] = [];
    const logger: Logger = {
      log: (level: LogLevel, message: string) => lines.push(`${level} ${message}`),
    };
    try {
      const writer = createHistoryWriter(storage, "app.db", { logger, leaseMs: 60_000 });
      await writer.acquire();
      assert.deepEqual(lines, []);
      await writer.release();
    } finally {
      storage.close();
    }
  },
});
