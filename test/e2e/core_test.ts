/**
 * The core promise, end to end through the CLI, on a `file://` bucket and on a real MinIO:
 * what the `sqlite3` CLI writes, Walsync restores identical and intact; every stored byte is
 * covered by a SHA256 that a plain GET confirms; any tampering stops restore and verify with
 * exit 5 and leaves nothing behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { backends, s3Bucket, sdkTest, sha256, type TestBucket } from "../support/bucket.ts";
import { filesIn, unwritableSupported, withUnwritable, workDir } from "../support/files.ts";
import { dbFingerprint, sqlite, sqliteSession } from "../support/sqlite.ts";
import { walsync } from "../support/walsync.ts";

/** A database with tables, an index, a view, text and blobs, written by the sqlite3 CLI. */
async function makeDatabase(
  path: string,
  options: { rows: number; blobSize: number; wal: boolean },
) {
  await sqlite(
    path,
    `PRAGMA journal_mode=${options.wal ? "WAL" : "DELETE"};
     CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, data BLOB);
     CREATE INDEX items_name ON items(name);
     CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
     CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10;
     INSERT INTO items(name, price, data)
       SELECT 'item-' || value, value * 0.5, randomblob(${options.blobSize}) FROM generate_series(1, ${options.rows});
     INSERT INTO notes(body) SELECT printf('note %d: %s', value, hex(randomblob(20))) FROM generate_series(1, 100);`,
  );
}

/** A small WAL database `app.db` in a fresh directory, snapshotted to a `file://` bucket there. */
async function backedUpDatabase(): Promise<{ dir: string; bucket: string; db: string }> {
  const dir = await workDir();
  const bucket = `file://${dir}/bucket`;
  const db = join(dir, "app.db");
  await makeDatabase(db, { rows: 5, blobSize: 10, wal: true });
  const snap = await walsync(["snapshot", db, "-b", bucket]);
  assert.equal(snap.code, 0, snap.stderr);
  return { dir, bucket, db };
}

async function snapshotOk(bucket: TestBucket, db: string): Promise<void> {
  const r = await walsync(["snapshot", db, "--bucket", bucket.arg], { env: bucket.env });
  assert.equal(r.code, 0, r.stderr);
}

async function snapshotKeys(bucket: TestBucket): Promise<string[]> {
  return (await bucket.keys()).filter((k) => k.includes("/snapshots/"));
}

for (const backend of backends) {
  const name = backend.name;

  Deno.test(
    `${name}: a WAL database of ~1 MB restores with identical content and passes integrity_check`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = join(dir, "app.db");
      await makeDatabase(db, { rows: 1000, blobSize: 1000, wal: true });
      const snap = await walsync(["snapshot", db, "--bucket", bucket.arg, "--json"], {
        env: bucket.env,
      });
      assert.equal(snap.code, 0, snap.stderr);
      const snapJson = JSON.parse(snap.stdout);
      assert.equal(snapJson.ok, true);
      assert.match(snapJson.sha256, /^[0-9a-f]{64}$/);

      const out = join(dir, "restored.db");
      const r = await walsync(["restore", "app.db", "--bucket", bucket.arg, "-o", out], {
        env: bucket.env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`✓ Checksum verified: ${snapJson.sha256.slice(0, 12)}…`));
      const source = await dbFingerprint(db);
      const restored = await dbFingerprint(out);
      assert.equal(restored.integrity, "ok");
      assert.equal(restored.sha3, source.sha3);
      assert.equal(await sqlite(out, "SELECT count(*) FROM items;"), "1000");
    },
  );

  Deno.test(`${name}: a rollback-journal database restores identical`, sdkTest, async () => {
    const bucket = await backend.make();
    const dir = await workDir();
    const db = join(dir, "journal.db");
    await makeDatabase(db, { rows: 200, blobSize: 3000, wal: false });
    await snapshotOk(bucket, db);
    const out = join(dir, "out.db");
    const r = await walsync(["restore", "journal.db", "-b", bucket.arg, "-o", out], {
      env: bucket.env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await dbFingerprint(out), await dbFingerprint(db));
    assert.equal(await sqlite(out, "PRAGMA journal_mode;"), "delete");
  });

  Deno.test(
    `${name}: a WAL database whose -shm is gone (its files copied from a live server) snapshots with the commits in its WAL`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const live = join(dir, "live.db");
      const db = join(dir, "app.db");
      const app = sqliteSession(live);
      try {
        await app.run(`PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
          CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
          INSERT INTO t(v) SELECT 'row ' || value FROM generate_series(1, 500);
          INSERT INTO t(v) VALUES ('only in the WAL');`);
        // The database file and its WAL, without the -shm: what a copy of a live server holds.
        await Deno.copyFile(live, db);
        await Deno.copyFile(`${live}-wal`, `${db}-wal`);
      } finally {
        await app.close();
      }
      await snapshotOk(bucket, db);
      const out = join(dir, "out.db");
      const r = await walsync(["restore", "app.db", "-b", bucket.arg, "-o", out], {
        env: bucket.env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sqlite(out, "SELECT count(*) FROM t WHERE v = 'only in the WAL';"), "1");
      assert.deepEqual(await dbFingerprint(out), await dbFingerprint(db));
    },
  );

  Deno.test(
    `${name}: an almost empty database (schema only) and a 50 MB one restore identical`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const tiny = join(dir, "tiny.db");
      await sqlite(tiny, "CREATE TABLE t(x);");
      const big = join(dir, "big.db");
      await makeDatabase(big, { rows: 800, blobSize: 64 * 1024, wal: true });
      assert.ok((await Deno.stat(big)).size > 50_000_000);
      for (const db of [tiny, big]) {
        await snapshotOk(bucket, db);
        const out = `${db}.restored`;
        const r = await walsync(["restore", db.split("/").at(-1)!, "-b", bucket.arg, "-o", out], {
          env: bucket.env,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await dbFingerprint(out), await dbFingerprint(db));
      }
    },
  );

  Deno.test(
    `${name}: every byte value 0x00-0xFF at every offset survives, in blobs and in the stored object`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = join(dir, "bytes.db");
      // Row s holds the 256 byte values rotated by s, so each value appears at each offset.
      const rows = Array.from({ length: 256 }, (_, s) => {
        const hex = Array.from(
          { length: 256 },
          (_, i) => ((i + s) % 256).toString(16).padStart(2, "0"),
        ).join("");
        return `(${s}, x'${hex}')`;
      });
      await sqlite(
        db,
        `PRAGMA journal_mode=WAL; CREATE TABLE b(shift INTEGER PRIMARY KEY, v BLOB); INSERT INTO b VALUES ${
          rows.join(",")
        };`,
      );
      await snapshotOk(bucket, db);
      const out = join(dir, "bytes-restored.db");
      const r = await walsync(["restore", "bytes.db", "-b", bucket.arg, "-o", out], {
        env: bucket.env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await dbFingerprint(out), await dbFingerprint(db));
      for (const shift of [0, 1, 127, 128, 255]) {
        const hex = await sqlite(out, `SELECT hex(v) FROM b WHERE shift = ${shift};`);
        const expected = Array.from(
          { length: 256 },
          (_, i) => ((i + shift) % 256).toString(16).padStart(2, "0"),
        )
          .join("").toUpperCase();
        assert.equal(hex, expected);
      }
      // The stored object is byte for byte the restored file, and its metadata digest is its SHA256.
      const [key] = await snapshotKeys(bucket);
      const raw = await bucket.read(key);
      assert.equal(raw.metadata.sha256, sha256(raw.bytes));
      assert.deepEqual(raw.bytes, await Deno.readFile(out));
      const seen = new Set(raw.bytes);
      assert.equal(seen.size, 256);
    },
  );

  Deno.test(
    `${name}: objects carry sha256 metadata equal to the SHA256 of a plain GET, and list --checksums shows it`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      for (const n of ["one.db", "two.db"]) {
        await makeDatabase(join(dir, n), { rows: 50, blobSize: 500, wal: true });
        await snapshotOk(bucket, join(dir, n));
      }
      const keys = await snapshotKeys(bucket);
      assert.equal(keys.length, 2);
      const list = await walsync(["list", "-b", bucket.arg, "--checksums", "--json"], {
        env: bucket.env,
      });
      assert.equal(list.code, 0, list.stderr);
      const listed = JSON.parse(list.stdout);
      assert.deepEqual(listed.databases.map((d: { name: string }) => d.name), ["one.db", "two.db"]);
      for (const key of keys) {
        const raw = await bucket.read(key);
        assert.equal(raw.metadata.sha256, sha256(raw.bytes), key);
        assert.equal(raw.metadata["walsync-size"], String(raw.bytes.byteLength));
        const entry = listed.databases.find((d: { latestSnapshot: { key: string } }) =>
          d.latestSnapshot.key === key
        );
        assert.equal(entry.latestSnapshot.sha256, raw.metadata.sha256);
      }
      const text = await walsync(["list", "-b", bucket.arg, "--checksums"], { env: bucket.env });
      assert.match(text.stdout, /^NAME\s+LATEST SNAPSHOT\s+SIZE/);
      assert.ok(text.stdout.includes(listed.databases[0].latestSnapshot.sha256));
    },
  );

  const tampers: [string, (bucket: TestBucket, keys: string[]) => Promise<void>, RegExp][] = [
    ["one flipped byte", async (bucket, [key]) => {
      const raw = await bucket.read(key);
      raw.bytes[Math.floor(raw.bytes.length / 2)] ^= 0x01;
      await bucket.write(key, raw);
    }, /SHA256 mismatch/],
    ["a truncated object", async (bucket, [key]) => {
      const raw = await bucket.read(key);
      await bucket.write(key, {
        bytes: raw.bytes.subarray(0, raw.bytes.length - 4096),
        metadata: raw.metadata,
      });
    }, /truncated/],
    ["deleted metadata", async (bucket, [key]) => {
      const raw = await bucket.read(key);
      await bucket.write(key, { bytes: raw.bytes, metadata: {} });
    }, /metadata is missing/],
    ["two objects' metadata swapped", async (bucket, [a, b]) => {
      const ra = await bucket.read(a);
      const rb = await bucket.read(b);
      await bucket.write(a, { bytes: ra.bytes, metadata: rb.metadata });
      await bucket.write(b, { bytes: rb.bytes, metadata: ra.metadata });
    }, /SHA256 mismatch|size|another object/],
  ];
  for (const [what, tamper, problem] of tampers) {
    Deno.test(
      `${name}: ${what} makes restore and verify fail with exit 5 naming the object, writing nothing`,
      sdkTest,
      async () => {
        const bucket = await backend.make();
        const dir = await workDir();
        const db = join(dir, "app.db");
        await makeDatabase(db, { rows: 300, blobSize: 700, wal: true });
        await snapshotOk(bucket, db);
        await sqlite(db, "INSERT INTO notes(body) VALUES ('second generation');");
        await snapshotOk(bucket, db);
        const keys = (await snapshotKeys(bucket)).reverse(); // newest first: restore reads it
        await tamper(bucket, keys);

        const outDir = join(dir, "out");
        await Deno.mkdir(outDir);
        const r = await walsync(
          ["restore", "app.db", "-b", bucket.arg, "-o", join(outDir, "r.db")],
          { env: bucket.env },
        );
        assert.equal(r.code, 5, r.stderr);
        assert.ok(r.stderr.includes(keys[0]), r.stderr);
        assert.match(r.stderr, problem);
        // One error line; a damaged body is fetched once more first (one WARN line) to tell
        // lasting damage from damage on the wire.
        const lines = r.stderr.trim().split("\n");
        assert.equal(
          lines.filter((l) => !/ WARN retrying download /.test(l)).length,
          1,
          "one line",
        );
        assert.ok(lines.length <= 2, r.stderr);
        assert.deepEqual(await filesIn(outDir), [], "nothing written, no temporary file left");

        const v = await walsync(["verify", "app.db", "-b", bucket.arg], { env: bucket.env });
        assert.equal(v.code, 5, v.stdout + v.stderr);
        assert.ok(v.stdout.includes(keys[0]), v.stdout);
        assert.match(v.stdout, problem);
        const vj = await walsync(["verify", "app.db", "-b", bucket.arg, "--json"], {
          env: bucket.env,
        });
        assert.equal(vj.code, 5);
        const report = JSON.parse(vj.stdout);
        assert.equal(report.ok, false);
        assert.ok(report.failures.some((f: { key: string }) => f.key === keys[0]));
      },
    );
  }

  Deno.test(
    `${name}: verify passes on an intact backup and prints the summary`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      await makeDatabase(join(dir, "ok.db"), { rows: 100, blobSize: 100, wal: true });
      await snapshotOk(bucket, join(dir, "ok.db"));
      const v = await walsync(["verify", "ok.db", "-b", bucket.arg], { env: bucket.env });
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /✓ All checksums valid/);
    },
  );

  Deno.test(
    `${name}: a snapshot taken while a writer commits in a loop restores a consistent database`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = join(dir, "busy.db");
      await sqlite(
        db,
        "PRAGMA journal_mode=WAL; CREATE TABLE ledger(id INTEGER PRIMARY KEY, amount INTEGER, pad BLOB);",
      );
      // Each transaction inserts +n and -n: any committed state sums to zero, a torn one does not.
      const stop = join(dir, "stop");
      const writer = new Deno.Command("bash", {
        args: [
          "-c",
          `i=0; while [ ! -e ${stop} ] && [ $i -lt 100000 ]; do i=$((i+1)); echo "BEGIN; INSERT INTO ledger(amount,pad) VALUES ($i, randomblob(2000)); INSERT INTO ledger(amount,pad) VALUES (-$i, randomblob(2000)); COMMIT;"; done | sqlite3 -cmd ".timeout 5000" ${db}`,
        ],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const rowsNow = async () =>
        Number(await sqlite(db, ".timeout 5000\nSELECT count(*) FROM ledger;"));
      while (await rowsNow() < 200) await new Promise((r) => setTimeout(r, 20));
      const snaps: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await walsync([
          "snapshot",
          db,
          "-b",
          bucket.arg,
          "--name",
          `busy-${i}.db`,
          "--json",
        ], { env: bucket.env });
        assert.equal(r.code, 0, r.stderr);
        snaps.push(`busy-${i}.db`);
      }
      await Deno.writeTextFile(stop, "");
      const status = await writer.output();
      assert.equal(status.code, 0, new TextDecoder().decode(status.stderr));
      const finalRows = await rowsNow();
      const counts: number[] = [];
      for (const name of snaps) {
        const out = join(dir, `${name}.restored`);
        const r = await walsync(["restore", name, "-b", bucket.arg, "-o", out], {
          env: bucket.env,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await dbFingerprint(out)).integrity, "ok");
        const [count, sum] =
          (await sqlite(out, "SELECT count(*), coalesce(sum(amount),0) FROM ledger;")).split("|");
        assert.equal(sum, "0", `torn transaction in ${name}`);
        assert.equal(Number(count) % 2, 0);
        counts.push(Number(count));
      }
      // The writer really was running during the snapshots: they caught different states.
      assert.ok(counts[0] >= 200 && counts[2] < finalRows, `counts ${counts} final ${finalRows}`);
      assert.ok(counts[0] < counts[2], `counts ${counts}`);
    },
  );

  Deno.test(
    `${name}: restore refuses to overwrite an existing file without --force, and replaces it with --force`,
    sdkTest,
    async () => {
      const bucket = await backend.make();
      const dir = await workDir();
      const db = join(dir, "app.db");
      await makeDatabase(db, { rows: 20, blobSize: 10, wal: true });
      await snapshotOk(bucket, db);
      const out = join(dir, "existing.db");
      await Deno.writeTextFile(out, "precious");
      const r = await walsync(["restore", "app.db", "-b", bucket.arg, "-o", out], {
        env: bucket.env,
      });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /already exists.*--force/);
      assert.equal(await Deno.readTextFile(out), "precious");
      // A stale WAL beside the target must not be replayed onto the restored file.
      await Deno.writeTextFile(`${out}-wal`, "stale wal");
      const f = await walsync(["restore", "app.db", "-b", bucket.arg, "-o", out, "--force"], {
        env: bucket.env,
      });
      assert.equal(f.code, 0, f.stderr);
      assert.deepEqual(await dbFingerprint(out), await dbFingerprint(db));
    },
  );
}

Deno.test("restore --force refuses an output database another process has open (the application still running): exit 4 naming the fix, the live database and its WAL untouched", async () => {
  const { dir, bucket } = await backedUpDatabase();
  const live = join(dir, "live.db");
  await makeDatabase(live, { rows: 5, blobSize: 10, wal: true });
  const app = sqliteSession(live);
  try {
    // A commit that is only in the running application's WAL.
    await app.run("INSERT INTO notes(body) VALUES ('written by the running app');");
    const r = await walsync(["restore", "app.db", "-b", bucket, "-o", live, "--force"]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /live\.db is open in another process/);
    assert.match(r.stderr, /stop the application/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.equal((await app.run("SELECT count(*) FROM notes;")).trim(), "101");
  } finally {
    await app.close();
  }
  assert.equal(await sqlite(live, "SELECT count(*) FROM notes;"), "101");
  assert.deepEqual((await filesIn(dir)).filter((name) => name.includes(".walsync-")), []);
});

Deno.test({
  name:
    "bad input: a restore into a directory it may not write exits 2 with one line naming the directory and the fix, and leaves nothing",
  ignore: !unwritableSupported(),
}, async () => {
  const { dir, bucket } = await backedUpDatabase();
  const target = join(dir, "target");
  await Deno.mkdir(target);
  const r = await withUnwritable(
    target,
    () => walsync(["restore", "app.db", "-b", bucket, "-o", join(target, "app.db")]),
  );
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /cannot create files in .*target/);
  assert.match(r.stderr, /choose another directory with -o/);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.deepEqual(await filesIn(target), []);
});

Deno.test("bad input: restore --force never replaces what is not a regular file (a FIFO, a device): exit 2 with one line, the node left as it was", async () => {
  const { dir, bucket } = await backedUpDatabase();
  const fifo = join(dir, "pipe");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.ok(made.success, "mkfifo");
  const r = await walsync(["restore", "app.db", "-b", bucket, "-o", fifo, "--force"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /pipe is not a regular file/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.ok((await Deno.lstat(fifo)).isFifo, "the FIFO is still there");
  assert.deepEqual((await filesIn(dir)).filter((name) => name.includes(".walsync-")), []);
});

Deno.test({
  name:
    "bad input: a file:// bucket in a directory walsync may not write exits 3 with one line naming the bucket and the fix",
  ignore: !unwritableSupported(),
}, async () => {
  const dir = await workDir();
  const db = join(dir, "app.db");
  await makeDatabase(db, { rows: 5, blobSize: 10, wal: true });
  const parent = join(dir, "backups");
  await Deno.mkdir(parent);
  for (const root of [join(parent, "new"), parent]) {
    // A bucket directory still to be made, then one that exists.
    const r = await withUnwritable(parent, () => walsync(["snapshot", db, "-b", `file://${root}`]));
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /file:\/\/.*backups/);
    assert.match(r.stderr, /run walsync as a user who may write there/);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("bad input: a missing database, a non-SQLite file and an empty file exit 4 with one line", async () => {
  const dir = await workDir();
  const bucket = `file://${dir}/bucket`;
  await Deno.writeTextFile(
    join(dir, "notes.txt"),
    "hello, this is not a database at all ".repeat(10),
  );
  await Deno.writeFile(join(dir, "empty.db"), new Uint8Array());
  for (
    const [file, message] of [["missing.db", /not found/], ["notes.txt", /not a SQLite database/], [
      "empty.db",
      /empty/,
    ]] as const
  ) {
    const r = await walsync(["snapshot", join(dir, file), "-b", bucket]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, "no stack trace");
  }
});

Deno.test({
  name:
    "bad input: a WAL database whose -shm cannot be created (its directory not writable, the application stopped) exits 4 naming the -shm and the fix",
  ignore: !unwritableSupported(),
}, async () => {
  const dir = await workDir();
  const dbDir = join(dir, "data");
  await Deno.mkdir(dbDir);
  const db = join(dbDir, "app.db");
  // The sqlite3 CLI closes the database: its -wal and -shm are gone, as under a stopped app.
  await makeDatabase(db, { rows: 5, blobSize: 10, wal: true });
  assert.deepEqual(await filesIn(dbDir), ["app.db"]);
  const r = await withUnwritable(
    dbDir,
    () => walsync(["snapshot", db, "-b", `file://${dir}/bucket`]),
  );
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /app\.db-shm/);
  assert.match(r.stderr, /WAL mode/);
  assert.match(r.stderr, /run walsync as a user who may write in .*data/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

Deno.test("bad input: usage mistakes exit 2 with one line naming the fix", async () => {
  const dir = await workDir();
  const cases: [string[], RegExp][] = [
    [["snapshot", "x.db"], /--bucket is required/],
    [["snapshot", "x.db", "-b", "Not_A_Bucket!"], /not a valid bucket name/],
    [["snapshot", "x.db", "-b", "ftp://host/x"], /unknown scheme/],
    [["restore", "x.db", "-b", `file://${dir}`], /needs -o/],
    [
      ["restore", "x.db", "-b", `file://${dir}`, "-o", "o.db", "--txid", "abc"],
      /--txid abc is not a whole number/,
    ],
    [
      ["restore", "x.db", "-b", `file://${dir}`, "-o", "o.db", "--timestamp", "yesterday"],
      /not an RFC 3339 time/,
    ],
    [["frobnicate"], /unknown command/],
    [["list", "--bogus"], /unknown option/],
  ];
  for (const [args, message] of cases) {
    const r = await walsync(args, { cwd: dir });
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("bad input: restoring a database the bucket does not hold says so and writes nothing", async () => {
  const dir = await workDir();
  const r = await walsync([
    "restore",
    "ghost.db",
    "-b",
    `file://${dir}/empty`,
    "-o",
    join(dir, "g.db"),
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no snapshot of ghost\.db/);
  assert.deepEqual(await filesIn(dir), []);
});

Deno.test("--json errors are one JSON document with kind and code", async () => {
  const dir = await workDir();
  const r = await walsync(["snapshot", join(dir, "nope.db"), "-b", `file://${dir}`, "--json"]);
  assert.equal(r.code, 4);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual({ ok: doc.ok, kind: doc.error.kind, code: doc.error.code }, {
    ok: false,
    kind: "database",
    code: 4,
  });
});

Deno.test(
  "s3: a missing bucket and wrong credentials exit 3 with one line, and the secret never appears",
  sdkTest,
  async () => {
    const bucket = await s3Bucket();
    const dir = await workDir();
    const db = join(dir, "app.db");
    await makeDatabase(db, { rows: 10, blobSize: 10, wal: true });
    const secret = "SECRET-MARKER-7c41d0e2";
    const wrong = {
      ...bucket.env,
      AWS_SECRET_ACCESS_KEY: secret,
      AWS_SESSION_TOKEN: `${secret}-token`,
    };
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ["snapshot", db, "-b", "s3://no-such-bucket-walsync/x"],
        bucket.env,
        /bucket "no-such-bucket-walsync" does not exist/,
      ],
      [["list", "-b", "s3://no-such-bucket-walsync"], bucket.env, /does not exist/],
      [["snapshot", db, "-b", bucket.arg], wrong, /access denied|AWS_SECRET_ACCESS_KEY/],
      [
        ["restore", "app.db", "-b", bucket.arg, "-o", join(dir, "o.db")],
        wrong,
        /access denied|AWS_SECRET_ACCESS_KEY/,
      ],
      [["verify", "app.db", "-b", bucket.arg], wrong, /access denied|AWS_SECRET_ACCESS_KEY/],
      [["list", "-b", bucket.arg], wrong, /access denied|AWS_SECRET_ACCESS_KEY/],
    ];
    for (const [args, env, message] of cases) {
      for (const json of [false, true]) {
        const r = await walsync(json ? [...args, "--json"] : args, { env });
        assert.equal(r.code, 3, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
        assert.ok(!(r.stdout + r.stderr).includes(secret), `secret leaked by ${args[0]}`);
        if (json) assert.equal(JSON.parse(r.stdout).error.kind, "storage");
      }
    }
    assert.deepEqual((await filesIn(dir)).filter((f) => f.startsWith("o.db")), []);
  },
);
