/**
 * Transfers that meet damage: a proxy between Walsync and MinIO flips one byte of a body or
 * cuts a connection half-way. Damage in transit is retried (one log line per retry, the count
 * in `--json`) and the result is exact; damage to the stored object itself still ends in
 * exit 5 with nothing written. A disk that is too small, or fills up, is one clear line and
 * exit 1 with no file left behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Exchange } from "../support/damage_proxy.ts";
import {
  type ProxiedBucket,
  proxiedBucket,
  type S3TestBucket,
  sdkTest,
} from "../support/bucket.ts";
import { filesIn, workDir } from "../support/files.ts";
import { dbFingerprint, sqlite } from "../support/sqlite.ts";
import { waitUntil } from "../support/wait.ts";
import { startWatch, walsync } from "../support/walsync.ts";

const MiB = 1024 * 1024;

/** A database of about `mib` MiB of incompressible rows, written by the sqlite3 CLI. */
async function database(dir: string, name: string, mib: number): Promise<string> {
  const db = join(dir, name);
  await sqlite(
    db,
    `PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
     INSERT INTO t(v) SELECT randomblob(4000) FROM generate_series(1, ${mib * 256});`,
  );
  return db;
}

/** What a proxied test gets: the proxy and the buckets, a work directory and a source `app.db`. */
interface ProxiedCase extends ProxiedBucket {
  /** A fresh work directory. */
  dir: string;
  /** The source database in `dir`. */
  db: string;
}

/**
 * Runs `fn` with a fresh proxy in front of the shared MinIO, a work directory and an `app.db` of
 * about `mib` MiB in it; stops the proxy whatever happens.
 */
async function withProxy(mib: number, fn: (c: ProxiedCase) => Promise<void>): Promise<void> {
  const { proxy, via, direct } = await proxiedBucket();
  try {
    const dir = await workDir();
    const db = await database(dir, "app.db", mib);
    await fn({ proxy, via, direct, dir, db });
  } finally {
    await proxy.stop();
  }
}

/** Registers a test (with the SDK's sanitizer options) that runs `fn` under {@link withProxy}. */
function proxiedTest(name: string, mib: number, fn: (c: ProxiedCase) => Promise<void>): void {
  Deno.test(name, sdkTest, () => withProxy(mib, fn));
}

const isSnapshot = (e: Exchange) => e.target.includes("/snapshots/");
const isSnapshotPut = (e: Exchange) => e.method === "PUT" && isSnapshot(e);
const isSnapshotGet = (e: Exchange) => e.method === "GET" && isSnapshot(e);

/** Retry lines on stderr. */
function retryLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => / WARN retrying /.test(line));
}

/** Bodies over 64 MiB go up as one streamed PUT up to 5 GiB; this env sends them in parts. */
const inParts = { WALSYNC_STREAMED_PUT_MAX: "0" };

async function snapshot(bucket: S3TestBucket, db: string, env: Record<string, string> = {}) {
  const r = await walsync(["snapshot", db, "--bucket", bucket.arg, "--json"], {
    env: { ...bucket.env, ...env },
  });
  assert.equal(r.code, 0, r.stderr);
  return { json: JSON.parse(r.stdout), stderr: r.stderr };
}

async function restore(bucket: S3TestBucket, name: string, out: string) {
  const r = await walsync(["restore", name, "--bucket", bucket.arg, "-o", out, "--json"], {
    env: bucket.env,
  });
  return { ...r, json: r.code === 0 ? JSON.parse(r.stdout) : undefined };
}

async function assertSame(restored: string, source: string): Promise<void> {
  const [a, b] = [await dbFingerprint(restored), await dbFingerprint(source)];
  assert.equal(a.integrity, "ok");
  assert.equal(a.sha3, b.sha3);
}

for (
  const [kind, mib, isPart, env] of [
    ["single-part", 5, (e: Exchange) => !e.target.includes("uploadId="), {}],
    ["streamed single-part", 70, (e: Exchange) => !e.target.includes("uploadId="), {}],
    ["multipart", 70, (e: Exchange) => e.target.includes("partNumber="), inParts],
  ] as const
) {
  proxiedTest(
    `s3: a ${kind} snapshot upload damaged in transit is sent again, logged once, and restores exact`,
    mib,
    async ({ proxy, via, dir, db }) => {
      proxy.add({
        direction: "request",
        action: "flip",
        match: (e) => isSnapshotPut(e) && isPart(e),
      });
      const snap = await snapshot(via, db, env);
      assert.equal(proxy.fired.length, 1, "the proxy damaged one body");
      assert.equal(snap.json.retries, 1, snap.stderr);
      const lines = retryLines(snap.stderr);
      assert.equal(lines.length, 1, snap.stderr);
      assert.match(lines[0], /retrying upload/);
      const out = join(dir, "restored.db");
      const r = await restore(via, "app.db", out);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.retries, 0);
      await assertSame(out, db);
    },
  );
}

for (const [kind, mib] of [["single-part", 5], ["multipart", 70]] as const) {
  proxiedTest(
    `s3: a ${kind} snapshot damaged on its way down is fetched again, logged once, and restores exact`,
    mib,
    async ({ proxy, via, direct, dir, db }) => {
      await snapshot(direct, db, inParts);
      proxy.add({ direction: "response", action: "flip", match: isSnapshotGet, at: 0.7 });
      const out = join(dir, "restored.db");
      const r = await restore(via, "app.db", out);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(proxy.fired.length, 1);
      assert.equal(r.json.retries, 1, r.stderr);
      const lines = retryLines(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /retrying download .*SHA256 mismatch/);
      await assertSame(out, db);
    },
  );
}

proxiedTest(
  "s3: verify fetches a snapshot damaged on its way down again, logs it once, and passes",
  5,
  async ({ proxy, via, direct, db }) => {
    await snapshot(direct, db);
    proxy.add({ direction: "response", action: "flip", match: isSnapshotGet, at: 0.4 });
    const v = await walsync(["verify", "app.db", "--bucket", via.arg, "--json"], {
      env: via.env,
    });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(proxy.fired.length, 1, "the proxy damaged one body");
    const json = JSON.parse(v.stdout);
    assert.deepEqual(json.failures, []);
    assert.equal(json.retries, 1, v.stderr);
    const lines = retryLines(v.stderr);
    assert.equal(lines.length, 1, v.stderr);
    assert.match(lines[0], /retrying download .*SHA256 mismatch/);
  },
);

proxiedTest(
  "s3: verify still reports a stored snapshot that itself changed (exit 5), after one more fetch",
  5,
  async ({ via, direct, db }) => {
    await snapshot(direct, db);
    const [key] = (await direct.keys()).filter((k) => k.includes("/snapshots/"));
    const raw = await direct.read(key);
    raw.bytes[Math.floor(raw.bytes.length / 3)] ^= 0x01;
    await direct.write(key, raw);
    const v = await walsync(["verify", "app.db", "--bucket", via.arg, "--json"], {
      env: via.env,
    });
    assert.equal(v.code, 5, v.stdout + v.stderr);
    const json = JSON.parse(v.stdout);
    assert.equal(json.failures.length, 1, v.stdout);
    assert.equal(json.failures[0].key, key);
    assert.match(json.failures[0].problem, /SHA256 mismatch/);
    assert.equal(retryLines(v.stderr).length, 1, v.stderr);
  },
);

proxiedTest(
  "s3: a connection cut half-way through a large snapshot resumes from the last byte received",
  70,
  async ({ proxy, via, direct, dir, db }) => {
    await snapshot(direct, db);
    proxy.add({ direction: "response", action: "cut", match: isSnapshotGet, minBytes: MiB });
    const out = join(dir, "restored.db");
    const r = await restore(via, "app.db", out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.fired.length, 1);
    const cut = proxy.fired[0];
    const lines = retryLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /retrying resume .*from=\d+/);
    // The resumed request starts where the cut one stopped, not at the start of its range.
    const from = Number(/from=(\d+)/.exec(lines[0])![1]);
    const start = Number(/bytes=(\d+)-/.exec(cut.range ?? "")?.[1] ?? 0);
    assert.equal(from, start + cut.offset);
    assert.equal(r.json.retries, 1);
    await assertSame(out, db);
  },
);

proxiedTest(
  "s3: a WAL segment damaged on its way down is fetched again and the restore is exact",
  1,
  async ({ proxy, via, direct, dir, db }) => {
    const watch = startWatch(direct, [db]);
    try {
      await watch.waitForLog(/snapshot/);
      for (let i = 0; i < 5; i++) {
        await sqlite(db, `INSERT INTO t(v) SELECT randomblob(3000) FROM generate_series(1, 20);`);
      }
      await waitUntil(
        "a WAL segment to be shipped",
        async () => (await direct.keys()).some((k) => k.includes("/wal/")),
        20_000,
      );
      const source = await dbFingerprint(db);
      await waitUntil("the backup to catch up", async () => {
        const out = join(dir, `probe-${crypto.randomUUID().slice(0, 6)}.db`);
        const r = await restore(direct, "app.db", out);
        const same = r.code === 0 && (await dbFingerprint(out)).sha3 === source.sha3;
        await Deno.remove(out).catch(() => {});
        return same;
      }, 30_000);
    } finally {
      await watch.stop();
    }
    proxy.add({
      direction: "response",
      action: "flip",
      match: (e) => e.method === "GET" && e.target.includes("/wal/"),
    });
    const out = join(dir, "restored.db");
    const r = await restore(via, "app.db", out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.fired.length, 1);
    assert.equal(r.json.retries, 1, r.stderr);
    assert.equal(retryLines(r.stderr).length, 1, r.stderr);
    await assertSame(out, db);
  },
);

proxiedTest(
  "s3: a stored snapshot that itself changed still fails with exit 5 and writes nothing",
  5,
  async ({ via, direct, dir, db }) => {
    await snapshot(direct, db);
    const [key] = (await direct.keys()).filter((k) => k.includes("/snapshots/"));
    const raw = await direct.read(key);
    raw.bytes[Math.floor(raw.bytes.length / 3)] ^= 0x01;
    await direct.write(key, raw);
    const outDir = join(dir, "out");
    await Deno.mkdir(outDir);
    const r = await walsync(["restore", "app.db", "-b", via.arg, "-o", join(outDir, "r.db")], {
      env: via.env,
    });
    assert.equal(r.code, 5, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.match(lines.at(-1)!, /SHA256 mismatch/);
    // Fetched once more to tell lasting damage from the wire: the same wrong digest again.
    assert.equal(retryLines(r.stderr).length, 1, r.stderr);
    assert.deepEqual(await filesIn(outDir), [], "nothing written, no temporary file left");
  },
);

/** Every file under `dir`, as paths relative to it. */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) found.push(...await filesUnder(dir, path));
    else found.push(path);
  }
  return found.sort();
}

/** Mounts a tmpfs of `mib` MiB at a new directory, or returns why it cannot. */
async function smallDisk(mib: number): Promise<{ dir: string; unmount(): Promise<void> } | string> {
  if (Deno.build.os !== "linux") return "tmpfs needs Linux";
  const dir = await Deno.makeTempDir({ prefix: "walsync-small-disk-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${mib}m`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch((err) => ({ code: -1, stderr: new TextEncoder().encode(String(err)) }));
  if (mount.code !== 0) {
    await Deno.remove(dir).catch(() => {});
    return `cannot mount a tmpfs (${new TextDecoder().decode(mount.stderr).trim()}); run as root`;
  }
  return {
    dir,
    async unmount() {
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir).catch(() => {});
    },
  };
}

Deno.test(
  "a restore onto a disk too small for it is refused with the numbers, exit 1, nothing written",
  sdkTest,
  async (t) => {
    const disk = await smallDisk(8);
    if (typeof disk === "string") {
      console.log(`skipped: ${disk}`);
      return void t;
    }
    try {
      await withProxy(12, async ({ via, direct, db }) => {
        await snapshot(direct, db);
        const r = await walsync(
          ["restore", "app.db", "-b", via.arg, "-o", join(disk.dir, "r.db")],
          {
            env: via.env,
          },
        );
        assert.equal(r.code, 1, r.stderr);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /not enough free space/);
        assert.ok(lines[0].includes(disk.dir), lines[0]);
        assert.match(lines[0], /needs [\d.]+ MiB \(\d+ bytes\), [\d.]+ MiB \(\d+ bytes\) free/);
        assert.doesNotMatch(r.stderr, /internal error/);
        assert.deepEqual(await filesIn(disk.dir), []);
      });
    } finally {
      await disk.unmount();
    }
  },
);

Deno.test(
  "a disk that fills up during a restore is one line naming the path and the space, exit 1, nothing left",
  sdkTest,
  async () => {
    const disk = await smallDisk(64);
    if (typeof disk === "string") {
      console.log(`skipped: ${disk}`);
      return;
    }
    try {
      await withProxy(40, async ({ proxy, via, direct, db }) => {
        await snapshot(direct, db);
        // The second range stalls, so the first one is on disk when something else fills it.
        proxy.add({
          direction: "response",
          action: "stall",
          match: (e) => isSnapshotGet(e) && /^bytes=[1-9]/.test(e.range ?? ""),
        });
        const running = walsync(
          ["restore", "app.db", "-b", via.arg, "-o", join(disk.dir, "r.db")],
          { env: via.env },
        );
        await waitUntil("the restore to start writing", async () => {
          for await (const entry of Deno.readDir(disk.dir)) {
            if ((await Deno.stat(join(disk.dir, entry.name))).size > 0) return true;
          }
          return false;
        }, 30_000);
        await new Deno.Command("dd", {
          args: ["if=/dev/zero", `of=${join(disk.dir, "filler")}`, "bs=1M"],
          stdout: "null",
          stderr: "null",
        }).output();
        proxy.release();
        const r = await running;
        assert.equal(r.code, 1, r.stderr);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /ran out of space/);
        assert.ok(lines[0].includes(disk.dir), lines[0]);
        assert.doesNotMatch(r.stderr, /internal error/);
        assert.deepEqual(await filesIn(disk.dir), ["filler"], "no partial or temporary file left");
      });
    } finally {
      await disk.unmount();
    }
  },
);

Deno.test(
  "file: a snapshot into a bucket on a disk too small for it is refused with the numbers, exit 3, no object or temporary file left",
  async () => {
    const disk = await smallDisk(2);
    if (typeof disk === "string") {
      console.log(`skipped: ${disk}`);
      return;
    }
    try {
      const db = await database(await workDir(), "app.db", 6);
      const r = await walsync(["snapshot", db, "--bucket", `file://${disk.dir}/b`]);
      assert.equal(r.code, 3, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /not enough free space/);
      assert.ok(lines[0].includes(disk.dir), lines[0]);
      assert.match(lines[0], /needs [\d.]+ MiB \(\d+ bytes\), [\d.]+ [KM]iB \(\d+ bytes\) free/);
      assert.doesNotMatch(r.stderr, /internal error/);
      const left = (await filesUnder(disk.dir)).filter((f) => !/\/lease/.test(f));
      assert.deepEqual(left, [], "no object, metadata or temporary file");
    } finally {
      await disk.unmount();
    }
  },
);
