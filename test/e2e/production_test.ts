/**
 * Walsync in production, end to end through the CLI: the config file (its parsing is in
 * `test/unit/config_test.ts`), secrets that never leak, several replicas per database (one
 * failing, restore picking the newest intact one), retention with a real short window (its plan
 * is in `test/unit/retention_test.ts`), restore drills, `status`, Prometheus metrics,
 * `replicate`, and the permissions of restored files. The independent
 * `sqlite3` CLI writes and checks; MinIO is used wherever S3 behaves differently from a
 * directory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseListenAddress } from "../../src/support/metrics.ts";
import { applyRetention } from "../../src/ops/retention.ts";
import { openBucket } from "../../src/storage/bucket.ts";
import { WalsyncError } from "../../src/support/errors.ts";
import { sharedMinio, startMinio } from "../support/minio.ts";
import { appDatabase, commit, writer } from "../support/application.ts";
import { fileBucket, s3Bucket, sdkTest, type TestBucket } from "../support/bucket.ts";
import { modeOf, workDir } from "../support/files.ts";
import {
  freePort,
  httpGet,
  listeningPorts,
  otherLocalAddress,
  parseMetrics,
} from "../support/host.ts";
import {
  generationsOf,
  generationStart,
  removeObject,
  storedObjects,
  tamper,
} from "../support/layout.ts";
import { contentHash, dbFingerprint, sqlite, sqliteRead } from "../support/sqlite.ts";
import { sleep, waitUntil } from "../support/wait.ts";
import { mainTs, restoreInto, startWalsync, walsync } from "../support/walsync.ts";

// ---------------------------------------------------------------------------------------------
// 1. Configuration

Deno.test("config: `walsync explain --config` prints per-database settings; a broken file exits 2 naming its line", async () => {
  const dir = await workDir();
  await Deno.writeTextFile(
    join(dir, "walsync.yml"),
    `sync-interval: 500ms
retention: 2h
databases:
  - path: app.db
    drill-interval: 10m
    replicas:
      - bucket: s3://backups-prod/app
        endpoint: \${MY_ENDPOINT}
        sse: AES256
      - bucket: file:///srv/backups
  - path: /data/jobs.db
    bucket: file:///srv/jobs
`,
  );
  const env = { MY_ENDPOINT: "http://127.0.0.1:9000" };
  const text = await walsync(["explain", "--config", "walsync.yml"], { cwd: dir, env });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`app\\.db\\s+${join(dir, "app.db")}`));
  assert.match(text.stdout, /sync every 500 ?ms/);
  assert.match(text.stdout, /retention (2h|7200000 ms), drills every (10m|600000 ms)/);
  assert.match(
    text.stdout,
    /replica s3:\/\/backups-prod\/app at http:\/\/127\.0\.0\.1:9000.*sse AES256/,
  );
  assert.match(text.stdout, /replica file:\/\/\/srv\/backups/);
  assert.match(text.stdout, /jobs\.db\s+\/data\/jobs\.db/);
  assert.match(text.stdout, /drills off/);

  const json = await walsync(["explain", "--config", "walsync.yml", "--json"], { cwd: dir, env });
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.ok, true);
  assert.equal(doc.command, "explain");
  assert.deepEqual(doc.databases.map((d: { name: string }) => d.name), ["app.db", "jobs.db"]);
  assert.equal(doc.databases[0].syncIntervalMs, 500);
  assert.equal(doc.databases[0].retentionMs, 7_200_000);
  assert.equal(doc.databases[0].replicas[0].endpoint, "http://127.0.0.1:9000");
  assert.equal(doc.databases[1].drillIntervalMs, 0);

  // Broken: line 7 has a bad sse value.
  await Deno.writeTextFile(
    join(dir, "broken.yml"),
    "databases:\n  - path: app.db\n    replicas:\n      - bucket: file:///srv/a\n      - bucket: s3://backups-prod/app\n        region: eu-west-1\n        sse: AES\n",
  );
  await Deno.rename(join(dir, "broken.yml"), join(dir, "walsync.yml"));
  const broken = await walsync(["explain", "--config", "walsync.yml"], { cwd: dir, env });
  assert.equal(broken.code, 2, broken.stderr);
  assert.match(broken.stderr, /walsync\.yml:7: sse "AES" must be AES256 or aws:kms/);
  assert.equal(broken.stdout, "");
  const brokenJson = await walsync(["explain", "--config", "walsync.yml", "--json"], { cwd: dir });
  assert.equal(brokenJson.code, 2);
  const err = JSON.parse(brokenJson.stdout);
  assert.equal(err.ok, false);
  assert.equal(err.error.kind, "usage");
  assert.match(err.error.message, /^walsync\.yml:7: /);

  const missing = await walsync(["explain", "--config", "nope.yml"], { cwd: dir });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.yml not found/);
});

Deno.test(
  "config: relative paths in walsync.yml, a file://./ bucket included, resolve beside the file whatever the working directory",
  async () => {
    const dir = await workDir();
    const etc = join(dir, "etc");
    const elsewhere = join(dir, "elsewhere");
    await Deno.mkdir(etc);
    await Deno.mkdir(elsewhere);
    const db = await appDatabase(etc);
    await Deno.writeTextFile(
      join(etc, "walsync.yml"),
      "sync-interval: 100ms\ndatabases:\n  - path: app.db\n    bucket: file://./backups\n",
    );
    const config = join(etc, "walsync.yml");
    const explained = await walsync(["explain", "--config", config, "--json"], { cwd: elsewhere });
    assert.equal(explained.code, 0, explained.stderr);
    assert.equal(JSON.parse(explained.stdout).databases[0].path, db);

    const watch = startWalsync(["watch", "--config", config], { cwd: elsewhere });
    try {
      await watch.waitForLog(/snapshot uploaded/);
      assert.equal((await watch.stop()).code, 0);
    } finally {
      await watch.kill();
    }
    const beside = await Array.fromAsync(Deno.readDir(etc)).then((e) => e.map((x) => x.name));
    const cwd = await Array.fromAsync(Deno.readDir(elsewhere)).then((e) => e.map((x) => x.name));
    assert.ok(beside.includes("backups"), `no backups/ beside the config: ${beside}`);
    assert.deepEqual(cwd, [], "backups went to the working directory");
    const out = join(dir, "restored.db");
    const r = await walsync(["restore", "app.db", "--config", config, "-o", out], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await contentHash(out), await contentHash(db));
  },
);

// ---------------------------------------------------------------------------------------------
// 2. Secrets

const marker = "SECRET-MARKER-9f3b";

function assertNoSecret(what: string, text: string): void {
  assert.ok(!text.includes("SECRET-MARKER"), `${what} shows a secret:\n${text}`);
  assert.ok(!text.includes("9f3b"), `${what} shows part of a secret:\n${text}`);
}

Deno.test(
  "secrets: a secret from the config file or the environment never appears in explain, watch logs, metrics, or any command's errors",
  sdkTest,
  async () => {
    const server = await sharedMinio();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const port = freePort();
    const prefix = `t-${crypto.randomUUID().slice(0, 8)}`;
    const config = join(dir, "walsync.yml");
    // Right access key, wrong secret (and a session token): every request is refused.
    await Deno.writeTextFile(
      config,
      `sync-interval: 200ms
databases:
  - path: app.db
    replicas:
      - bucket: s3://${server.bucket}/${prefix}/from-file
        endpoint: ${server.endpoint}
        access-key-id: ${server.accessKey}
        secret-access-key: ${marker}
        session-token: ${marker}-token
      - bucket: s3://${server.bucket}/${prefix}/from-env
        endpoint: ${server.endpoint}
`,
    );
    const env = {
      AWS_ACCESS_KEY_ID: server.accessKey,
      AWS_SECRET_ACCESS_KEY: `${marker}-env`,
      AWS_SESSION_TOKEN: `${marker}-session`,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_S3: server.endpoint,
    };

    for (
      const args of [["explain", "--config", config], ["explain", "--config", config, "--json"]]
    ) {
      const r = await walsync(args, { env });
      assert.equal(r.code, 0, r.stderr);
      assertNoSecret(args.join(" "), r.stdout + r.stderr);
    }

    const watch = startWalsync(
      ["watch", "--config", config, "--metrics-addr", `127.0.0.1:${port}`],
      { env },
    );
    try {
      // Both replicas fail (config-file secret and environment secret), and retry.
      await watch.waitForLog(/sync failed.*from-file/, { timeoutMs: 30_000 });
      await watch.waitForLog(/sync failed.*from-env/, { timeoutMs: 30_000 });
      await watch.waitForLog(/sync failed/, { count: 4, timeoutMs: 30_000 });
      const page = await httpGet(`http://127.0.0.1:${port}/metrics`);
      assert.ok(page, "metrics endpoint not reachable");
      assert.equal(page.status, 200);
      assertNoSecret("metrics page", page.body);
      const errors = parseMetrics(page.body).filter((s) => s.name === "walsync_sync_errors_total");
      assert.equal(errors.length, 2);
      assert.ok(errors.every((s) => s.value > 0), page.body);
      const stopped = await watch.stop();
      assertNoSecret("watch log", stopped.log);
    } finally {
      await watch.kill();
    }
    // The same with JSON logs.
    const jsonWatch = startWalsync(["watch", "--config", config, "--json-logs"], { env });
    try {
      await jsonWatch.waitForLog(/"sync failed/, { count: 2, timeoutMs: 30_000 });
      assertNoSecret("watch --json-logs", (await jsonWatch.stop()).log);
    } finally {
      await jsonWatch.kill();
    }

    // Every command that reaches storage fails with exit 3, in text and JSON, without the secret.
    const bucket = `s3://${server.bucket}/${prefix}/from-env`;
    const out = join(dir, "out.db");
    const commands = [
      ["snapshot", db, "-b", bucket],
      ["restore", "app.db", "-b", bucket, "-o", out],
      ["verify", "app.db", "-b", bucket],
      ["verify", "app.db", "-b", bucket, "--deep"],
      ["list", "-b", bucket],
      ["list", "app.db", "-b", bucket, "--generations"],
      ["status", "-b", bucket],
      ["status", "app.db", "-b", bucket, "--deep"],
    ];
    for (const args of commands) {
      for (const json of [false, true]) {
        const all = json ? [...args, "--json"] : args;
        const r = await walsync(all, { env });
        assert.equal(r.code, 3, `${all.join(" ")}: ${r.stdout}${r.stderr}`);
        assertNoSecret(all.join(" "), r.stdout + r.stderr);
        if (json) assert.equal(JSON.parse(r.stdout).error.kind, "storage");
      }
    }
    // restore --config reads the secret from the file: both replicas fail, no secret shown.
    for (const json of [false, true]) {
      const args = [
        "restore",
        "app.db",
        "--config",
        config,
        "-o",
        out,
        ...(json ? ["--json"] : []),
      ];
      const r = await walsync(args, { env });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assertNoSecret(args.join(" "), r.stdout + r.stderr);
    }
    // Credentials written into an endpoint URL are not printed back either.
    await Deno.writeTextFile(
      config,
      `databases:\n  - path: app.db\n    replicas:\n      - bucket: s3://good-bucket/p\n        endpoint: https://AKIDEXAMPLE:${marker}@minio.example.com:9000\n`,
    );
    for (const json of [false, true]) {
      const args = ["explain", "--config", config, ...(json ? ["--json"] : [])];
      const r = await walsync(args);
      assert.equal(r.code, 0, r.stderr);
      assertNoSecret(args.join(" "), r.stdout + r.stderr);
      assert.match(r.stdout, /minio\.example\.com:9000/);
    }
    // A config mistake on the secret's own line does not echo the secret either.
    await Deno.writeTextFile(
      config,
      `databases:\n  - path: app.db\n    replicas:\n      - bucket: s3://good-bucket/p\n        secret-access-key: ${marker}\n`,
    );
    const bad = await walsync(["explain", "--config", config, "--json"], { env });
    assert.equal(bad.code, 2);
    assertNoSecret("explain of a broken file", bad.stdout + bad.stderr);
  },
);

// ---------------------------------------------------------------------------------------------
// 3. Several replicas

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** The stderr note of `restore --config` passing over a replica (its location may add " at <endpoint>"). */
function skippedNote(bucketArg: string, key?: string): RegExp {
  return new RegExp(
    `replica ${escape(bucketArg)}( at \\S+)? skipped: ${key ? `.*${escape(key)}` : ""}`,
  );
}

/** Polls until restoring `name` from `bucket` yields the content of `source`. */
async function waitRestoresExactly(
  bucket: Pick<TestBucket, "arg" | "env">,
  source: string,
  name: string,
  dir: string,
  timeoutMs = 30_000,
): Promise<void> {
  const want = await dbFingerprint(source);
  let last = "";
  try {
    await waitUntil(`${bucket.arg} to hold the latest state of ${name}`, async () => {
      const r = await restoreInto(dir, [name, "-b", bucket.arg], bucket.env);
      if (r.code !== 0) {
        last = r.stderr;
        return false;
      }
      const got = await dbFingerprint(r.out);
      await Deno.remove(r.out);
      last = got.sha3;
      return got.integrity === "ok" && got.sha3 === want.sha3;
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last: ${last}`);
  }
}

Deno.test(
  "replicas: watch --config ships one database to MinIO and file:// while a writer commits; a replica whose bucket is missing does not hold the others up; restore --config skips it",
  sdkTest,
  async () => {
    const s3 = await s3Bucket();
    const file = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const missing = `walsync-missing-${crypto.randomUUID().slice(0, 8)}`;
    const config = join(dir, "walsync.yml");
    await Deno.writeTextFile(
      config,
      `sync-interval: 200ms
databases:
  - path: ${db}
    replicas:
      - bucket: ${s3.arg}
      - bucket: s3://${missing}/x
      - bucket: ${file.arg}
`,
    );
    const watch = startWalsync(["watch", "--config", config], { env: s3.env });
    try {
      await watch.waitForLog(/snapshot uploaded.*replica="?s3:\/\/walsync-test/);
      await watch.waitForLog(/snapshot uploaded.*replica=file:/);
      await writer(db, { transactions: 120, pause: 0.01 });
      await Promise.all([
        waitRestoresExactly(s3, db, "app.db", dir),
        waitRestoresExactly(file, db, "app.db", dir),
      ]);
      // The broken replica kept failing and retrying meanwhile; the others never failed.
      await watch.waitForLog(new RegExp(`sync failed.*${missing}\\W{0,3} does not exist`), {
        count: 2,
      });
      assert.ok(!watch.exited());

      // restore --config: the missing bucket is skipped with a note; a good replica is used.
      const r = await restoreInto(dir, ["app.db", "--config", config], s3.env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, skippedNote(`s3://${missing}/x`));
      assert.equal(await contentHash(r.out), await contentHash(db));
      assert.equal(await modeOf(r.out), 0o600);

      const stopped = await watch.stop();
      assert.equal(stopped.code, 0, stopped.log);
    } finally {
      await watch.kill();
    }
    // Everything committed before the stop is in both good replicas.
    const s3Restore = await restoreInto(dir, ["app.db", "-b", s3.arg], s3.env);
    const fileRestore = await restoreInto(dir, ["app.db", "-b", file.arg]);
    assert.equal(s3Restore.code, 0, s3Restore.stderr);
    assert.equal(fileRestore.code, 0, fileRestore.stderr);
    const want = await dbFingerprint(db);
    assert.deepEqual(await dbFingerprint(s3Restore.out), want);
    assert.deepEqual(await dbFingerprint(fileRestore.out), want);
  },
);

Deno.test({
  name:
    "replicas: two replicas of one database in one process never log a spurious sync failure (lock contention between their watchers)",
  // Watchers of the same database take SQLite's write lock across awaits; without the
  // in-process lock (withProcessLock in src/watch/mod.ts) another watcher's BEGIN IMMEDIATE would
  // busy-wait synchronously, block the event loop and fail with "stayed locked by a writer".
  ...sdkTest,
  fn: async () => {
    const dir = await workDir();
    const db = await appDatabase(dir);
    const buckets = [await fileBucket(), await fileBucket(), await fileBucket()];
    const config = join(dir, "walsync.yml");
    await Deno.writeTextFile(
      config,
      `sync-interval: 100ms\ncheckpoint-size: 65536\ndatabases:\n  - path: ${db}\n    replicas:\n${
        buckets.map((b) => `      - bucket: ${b.arg}\n`).join("")
      }`,
    );
    for (let round = 1; round <= 3; round++) {
      const watch = startWalsync(["watch", "--config", config]);
      try {
        await watch.waitForLog(/snapshot uploaded/, { count: 3 });
        await writer(db, { transactions: 60, tag: `r${round}` });
        for (const b of buckets) await waitRestoresExactly(b, db, "app.db", dir);
        const stopped = await watch.stop();
        assert.equal(stopped.code, 0);
        const bad = stopped.log.split("\n").filter((l) => / (ERROR|WARN) /.test(l));
        assert.deepEqual(bad, [], `round ${round}`);
      } finally {
        await watch.kill();
      }
    }
  },
});

Deno.test(
  "replicas: while a private MinIO is stopped the file:// replica keeps shipping; restore --config falls back to it; after MinIO returns it catches up",
  sdkTest,
  async () => {
    const server = await startMinio();
    try {
      const file = await fileBucket();
      const dir = await workDir();
      const db = await appDatabase(dir);
      const prefix = `t-${crypto.randomUUID().slice(0, 8)}`;
      const s3 = { arg: `s3://${server.bucket}/${prefix}`, env: server.env };
      const port = freePort();
      /** Lag and sync errors per replica kind, from the metrics page. */
      const scrape = async () => {
        const page = await httpGet(`http://127.0.0.1:${port}/metrics`);
        assert.ok(page);
        const samples = parseMetrics(page.body);
        const of = (name: string, kind: string) =>
          samples.find((x) => x.name === name && x.labels.replica.startsWith(kind))!.value;
        return {
          s3Lag: of("walsync_replication_lag_seconds", "s3:"),
          fileLag: of("walsync_replication_lag_seconds", "file:"),
          s3Errors: of("walsync_sync_errors_total", "s3:"),
        };
      };
      const config = join(dir, "walsync.yml");
      // Credentials from the file this time (the environment has none).
      await Deno.writeTextFile(
        config,
        `sync-interval: 200ms
databases:
  - path: ${db}
    replicas:
      - bucket: ${s3.arg}
        endpoint: ${server.endpoint}
        region: us-east-1
        access-key-id: ${server.accessKey}
        secret-access-key: ${server.secretKey}
      - bucket: ${file.arg}
`,
      );
      const watch = startWalsync([
        "watch",
        "--config",
        config,
        "--metrics-addr",
        `127.0.0.1:${port}`,
      ]);
      try {
        await watch.waitForLog(/snapshot uploaded/, { count: 2 });
        await writer(db, { transactions: 30, tag: "a" });
        await waitRestoresExactly(s3, db, "app.db", dir);
        await waitRestoresExactly(file, db, "app.db", dir);

        await server.pause();
        await writer(db, { transactions: 30, tag: "b" });
        await watch.waitForLog(/sync failed.*replica="?s3:/, { timeoutMs: 20_000 });
        await waitRestoresExactly(file, db, "app.db", dir);
        // MinIO is down: restore --config says so and restores the latest state from file://.
        const r = await restoreInto(dir, ["app.db", "--config", config]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, skippedNote(s3.arg));
        assert.equal(await contentHash(r.out), await contentHash(db));
        // The metrics show who is behind.
        await sleep(1200);
        const down = await scrape();
        const context = () => `${JSON.stringify(down)}\n${watch.log()}`;
        assert.ok(down.s3Lag >= 1, context());
        assert.ok(down.s3Errors >= 1, context());
        assert.equal(down.fileLag, 0, context());

        await server.resume();
        await waitRestoresExactly(s3, db, "app.db", dir, 45_000);
        await watch.waitForLog(/caught up.*replica="?s3:/);
        const up = await scrape();
        assert.equal(up.s3Lag, 0, `${JSON.stringify(up)}\n${watch.log()}`);
        assert.equal(up.fileLag, 0, `${JSON.stringify(up)}\n${watch.log()}`);
        const stopped = await watch.stop();
        assert.equal(stopped.code, 0, stopped.log);
      } finally {
        await watch.kill();
      }
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "replicas: restore --config takes the newest intact replica, falls back (saying so) when its snapshot is corrupted, exits 5 when every replica fails",
  sdkTest,
  async () => {
    const s3 = await s3Bucket();
    const file = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const config = join(dir, "walsync.yml");
    await Deno.writeTextFile(
      config,
      `databases:\n  - path: ${db}\n    replicas:\n      - bucket: ${file.arg}\n      - bucket: ${s3.arg}\n`,
    );
    // file:// holds the state after 3 commits; MinIO holds it and, newer, the state after 6.
    for (let i = 1; i <= 3; i++) await commit(db, "x", i);
    const older = await contentHash(db);
    for (const b of [file, s3]) {
      const r = await walsync(["snapshot", db, "-b", b.arg], { env: s3.env });
      assert.equal(r.code, 0, r.stderr);
    }
    for (let i = 4; i <= 6; i++) await commit(db, "x", i);
    const newer = await contentHash(db);
    assert.notEqual(older, newer);
    const snap = await walsync(["snapshot", db, "-b", s3.arg], { env: s3.env });
    assert.equal(snap.code, 0, snap.stderr);

    const best = await restoreInto(dir, ["app.db", "--config", config, "--json"], s3.env);
    assert.equal(best.code, 0, best.stderr);
    assert.match(JSON.parse(best.stdout).bucket, new RegExp(`^${escape(s3.arg)}( at |$)`));
    assert.equal(await contentHash(best.out), newer);
    assert.doesNotMatch(best.stderr, /skipped/);
    assert.equal(await modeOf(best.out), 0o600);

    // Corrupt MinIO's newest snapshot: the file:// replica is used, and stderr says why.
    const newest = (await storedObjects(s3, "app.db")).filter((o) => o.kind === "snapshot").at(-1)!;
    await tamper(s3, newest.key);
    const fallback = await restoreInto(dir, ["app.db", "--config", config], s3.env);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(
      fallback.stderr,
      skippedNote(s3.arg, newest.key),
    );
    assert.match(fallback.stdout, new RegExp(`from ${escape(file.arg)}`));
    assert.equal(await contentHash(fallback.out), older);
    assert.equal(await modeOf(fallback.out), 0o600);

    // Corrupt file://'s snapshot too: nothing is written, exit 5, each replica named.
    const fileSnap = (await storedObjects(file, "app.db")).find((o) => o.kind === "snapshot")!;
    await tamper(file, fileSnap.key);
    const none = await restoreInto(dir, ["app.db", "--config", config], s3.env);
    assert.equal(none.code, 5, none.stdout + none.stderr);
    assert.match(none.stderr, skippedNote(s3.arg));
    assert.match(none.stderr, skippedNote(file.arg));
    await assert.rejects(Deno.stat(none.out), Deno.errors.NotFound);
    const noneJson = await restoreInto(dir, ["app.db", "--config", config, "--json"], s3.env);
    assert.equal(noneJson.code, 5);
    assert.equal(JSON.parse(noneJson.stdout).error.kind, "integrity");
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).filter((n) =>
        n.includes(".tmp")
      ),
      [],
      "no temporary files left behind",
    );
  },
);

Deno.test(
  "replicas: restore --config ranks replicas by how recent their state is, not by txid (each bucket numbers its own txids)",
  sdkTest,
  async () => {
    const s3 = await s3Bucket();
    const file = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const config = join(dir, "walsync.yml");
    await Deno.writeTextFile(
      config,
      `databases:\n  - path: ${db}\n    replicas:\n      - bucket: ${s3.arg}\n      - bucket: ${file.arg}\n`,
    );
    // MinIO: four generations of the older state (a watcher that restarted, e.g. after errors,
    // starts each generation one txid higher); its highest txid is 3.
    await commit(db, "k", 1);
    const older = await contentHash(db);
    for (let i = 0; i < 4; i++) {
      const r = await walsync(["snapshot", db, "-b", s3.arg], { env: s3.env });
      assert.equal(r.code, 0, r.stderr);
    }
    // Later (past the 1 s precision of S3 times), file:// gets the newer state at txid 0.
    await sleep(1100);
    await commit(db, "k", 2);
    const newer = await contentHash(db);
    const r = await walsync(["snapshot", db, "-b", file.arg]);
    assert.equal(r.code, 0, r.stderr);

    const restored = await restoreInto(dir, ["app.db", "--config", config], s3.env);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(
      await contentHash(restored.out),
      newer,
      `restored the older state (${
        older === (await contentHash(restored.out))
      }): ${restored.stdout}`,
    );
  },
);

// ---------------------------------------------------------------------------------------------
// 4. Retention

for (const backend of [{ name: "file", make: fileBucket }, { name: "s3", make: s3Bucket }]) {
  Deno.test(
    `retention: ${backend.name}: applyRetention deletes nothing while the base snapshot does not verify, then deletes the old generation`,
    sdkTest,
    async () => {
      const bucket: TestBucket = await backend.make();
      const dir = await workDir();
      const db = await appDatabase(dir);
      for (let i = 1; i <= 3; i++) {
        await commit(db, "r", i);
        const r = await walsync(["snapshot", db, "-b", bucket.arg], { env: bucket.env });
        assert.equal(r.code, 0, r.stderr);
        await sleep(30);
      }
      const gens = await generationsOf(bucket, "app.db");
      assert.equal(gens.length, 3);
      const [g1, g2, g3] = gens.map(generationStart);
      // The window's start falls between the second and third generation: the second is the base.
      const now = g3 + 10_000;
      const windowMs = now - Math.floor((g2 + g3) / 2);
      const server = backend.name === "s3" ? await sharedMinio() : undefined;
      const storage = await openBucket(
        bucket.arg,
        server
          ? {
            endpoint: server.endpoint,
            region: "us-east-1",
            credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
          }
          : {},
      );
      try {
        assert.ok(g1 < g2);
        const before = await bucket.keys();
        const base = (await storedObjects(bucket, "app.db")).find((o) =>
          o.generation === gens[1] && o.kind === "snapshot"
        )!;
        const original = await bucket.read(base.key);
        await tamper(bucket, base.key);
        const skipped = await applyRetention(storage, "app.db", windowMs, now);
        assert.equal(skipped.generations, 0);
        assert.equal(skipped.objects, 0);
        assert.match(skipped.skipped ?? "", new RegExp(`${base.key}.*does not verify`));
        assert.deepEqual(await bucket.keys(), before, "nothing deleted");

        await bucket.write(base.key, original);
        const done = await applyRetention(storage, "app.db", windowMs, now);
        assert.equal(done.skipped, undefined);
        assert.equal(done.generations, 1);
        assert.equal(done.objects, 1);
        assert.deepEqual(await generationsOf(bucket, "app.db"), gens.slice(1));
        // Window 0 keeps everything; a second run has nothing left to do.
        assert.deepEqual(await applyRetention(storage, "app.db", 0, now), {
          generations: 0,
          objects: 0,
        });
        assert.equal((await applyRetention(storage, "app.db", windowMs, now)).generations, 0);
      } finally {
        storage.close();
      }
      const latest = await restoreInto(dir, ["app.db", "-b", bucket.arg], bucket.env);
      assert.equal(latest.code, 0, latest.stderr);
      assert.equal(await contentHash(latest.out), await contentHash(db));
    },
  );
}

Deno.test(
  "retention: watch --snapshot-interval 2s --retention 2s deletes old generations; every point inside the window and the latest still restore exactly",
  sdkTest,
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const watch = startWalsync([
      "watch",
      db,
      "-b",
      bucket.arg,
      "--sync-interval",
      "100ms",
      "--snapshot-interval",
      "2s",
      "--retention",
      // The first retention run comes 5 s after the start (then hourly). With a 3 s window its
      // cutoff (2 s) falls before the second generation (about 2.1 s), so nothing would be
      // deletable yet; 2 s puts the second generation inside the window and the first out.
      "2s",
    ]);
    const points: { time: number; sha3: string }[] = [];
    try {
      await watch.waitForLog(/snapshot uploaded/);
      const firstGeneration = /generation started .*generation=(\S+)/.exec(watch.log())![1];
      const started = Date.now();
      for (let n = 1; Date.now() - started < 12_000; n++) {
        await commit(db, "t", n);
        await sleep(450); // shipped within a few sync intervals
        points.push({ time: Date.now(), sha3: await contentHash(db) });
        await sleep(150);
      }
      await watch.waitForLog(/retention deleted old generations/, { timeoutMs: 5_000 });
      const stopped = await watch.stop();
      assert.equal(stopped.code, 0, stopped.log);
      assert.doesNotMatch(stopped.log, / (ERROR|WARN) /);

      const line = stopped.log.split("\n").find((l) => l.includes("retention deleted"))!;
      const ranAt = Date.parse(line.split(" ")[0]);
      const cutoff = ranAt - 2000;
      const gens = await generationsOf(bucket, "app.db");
      assert.ok(!gens.includes(firstGeneration), `${firstGeneration} still stored`);
      // What is left: at most one generation (the base) started before the window's start.
      const olderThanWindow = gens.filter((g) => generationStart(g) <= cutoff);
      assert.ok(olderThanWindow.length <= 1, `kept ${olderThanWindow.join(", ")}`);
      assert.ok(gens.length >= 5, `only ${gens.length} generations left`);

      // Every recorded point inside the window at the time retention ran, and after it.
      const inWindow = points.filter((p) => p.time >= cutoff + 200);
      assert.ok(inWindow.length >= 10, `only ${inWindow.length} points in the window`);
      const wrong: string[] = [];
      for (const p of inWindow) {
        const stamp = new Date(p.time).toISOString();
        const r = await restoreInto(dir, ["app.db", "-b", bucket.arg, "--timestamp", stamp]);
        if (r.code !== 0) {
          wrong.push(`${stamp}: exit ${r.code} ${r.stderr}`);
          continue;
        }
        const got = await dbFingerprint(r.out);
        if (got.integrity !== "ok" || got.sha3 !== p.sha3) wrong.push(`${stamp}: differs`);
        await Deno.remove(r.out);
      }
      assert.deepEqual(wrong, []);
      const latest = await restoreInto(dir, ["app.db", "-b", bucket.arg]);
      assert.equal(latest.code, 0, latest.stderr);
      assert.deepEqual(await dbFingerprint(latest.out), await dbFingerprint(db));
      assert.equal(await modeOf(latest.out), 0o600);
      // A point from the deleted first generation is gone (no generation started by then).
      const gone = await restoreInto(dir, [
        "app.db",
        "-b",
        bucket.arg,
        "--timestamp",
        new Date(generationStart(firstGeneration) + 100).toISOString(),
      ]);
      assert.notEqual(gone.code, 0, gone.stdout);
    } finally {
      await watch.kill();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// 5. Restore drills

Deno.test(
  "drills: verify --deep passes on a good backup and exits 5 naming a tampered object; watch --drill-interval logs passed, then failed after tampering, and counts it in metrics",
  sdkTest,
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const port = freePort();
    const watch = startWalsync([
      "watch",
      db,
      "-b",
      bucket.arg,
      "--sync-interval",
      "100ms",
      "--drill-interval",
      "1s",
      "--metrics-addr",
      `127.0.0.1:${port}`,
    ]);
    try {
      await watch.waitForLog(/snapshot uploaded/);
      for (let i = 1; i <= 10; i++) await commit(db, "d", i);
      await watch.waitForLog(/restore drill passed db=app\.db/, { timeoutMs: 10_000 });
      await waitRestoresExactly(bucket, db, "app.db", dir);

      const good = await walsync(["verify", "app.db", "-b", bucket.arg, "--deep"]);
      assert.equal(good.code, 0, good.stdout + good.stderr);
      assert.match(good.stdout, /✓ Restore drill: txid \d+ applied/);
      assert.match(good.stdout, /✓ All checksums valid/);
      const goodJson = await walsync(["verify", "app.db", "-b", bucket.arg, "--deep", "--json"]);
      assert.equal(goodJson.code, 0);
      assert.equal(JSON.parse(goodJson.stdout).drill.ok, true);

      const snapshot = (await storedObjects(bucket, "app.db")).find((o) => o.kind === "snapshot")!;
      await tamper(bucket, snapshot.key);
      const key = snapshot.key.replace(/\./g, "\\.");
      await watch.waitForLog(new RegExp(`restore drill failed db=app\\.db .*${key}`), {
        timeoutMs: 10_000,
      });
      const bad = await walsync(["verify", "app.db", "-b", bucket.arg, "--deep"]);
      assert.equal(bad.code, 5, bad.stdout + bad.stderr);
      assert.match(bad.stdout, new RegExp(`✗ ${key}: `));
      assert.match(bad.stdout, /✗ app\.db \(restore drill\): /);
      const badJson = await walsync(["verify", "app.db", "-b", bucket.arg, "--deep", "--json"]);
      assert.equal(badJson.code, 5);
      const report = JSON.parse(badJson.stdout);
      assert.equal(report.ok, false);
      assert.ok(report.failures.some((f: { key: string }) => f.key === snapshot.key));
      assert.equal(report.drill.ok, false);

      const page = await httpGet(`http://127.0.0.1:${port}/metrics`);
      assert.ok(page);
      const samples = parseMetrics(page.body);
      const value = (name: string) => samples.find((s) => s.name === name)?.value;
      assert.ok((value("walsync_checksum_failures_total") ?? 0) >= 1, page.body);
      assert.equal(value("walsync_drill_success"), 0);
      assert.ok((value("walsync_drill_failures_total") ?? 0) >= 1);
      const stopped = await watch.stop();
      assert.equal(stopped.code, 0, stopped.log);
    } finally {
      await watch.kill();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// 6. Status

Deno.test(
  "status: s3: --json reports each database with txid, lag and chainOk; a deleted middle segment makes chainOk false, exit 5, naming the gap",
  sdkTest,
  async () => {
    const bucket = await s3Bucket();
    const dir = await workDir();
    const a = await appDatabase(dir, "a.db");
    const b = await appDatabase(dir, "b.db");
    const watch = startWalsync(
      ["watch", a, b, "-b", bucket.arg, "--sync-interval", "100ms"],
      { env: bucket.env },
    );
    try {
      await watch.waitForLog(/snapshot uploaded/, { count: 2 });
      // Metrics are off unless asked for: the process listens on no TCP port at all.
      assert.match(watch.log(), /metrics=off/);
      assert.deepEqual(listeningPorts(watch.pid), []);
      for (let i = 1; i <= 6; i++) {
        await commit(a, "s", i);
        await commit(b, "s", i);
        await sleep(300);
      }
      await waitRestoresExactly(bucket, a, "a.db", dir);
      await waitRestoresExactly(bucket, b, "b.db", dir);
      assert.equal((await watch.stop()).code, 0);
    } finally {
      await watch.kill();
    }
    const objects = await storedObjects(bucket);
    const maxTxid = (db: string) =>
      Math.max(...objects.filter((o) => o.db === db).map((o) => o.lastTxid));

    const ok = await walsync(["status", "-b", bucket.arg, "--json"], { env: bucket.env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const doc = JSON.parse(ok.stdout);
    assert.equal(doc.ok, true);
    assert.equal(doc.command, "status");
    assert.deepEqual(doc.databases.map((d: { name: string }) => d.name), ["a.db", "b.db"]);
    for (const d of doc.databases) {
      assert.equal(d.chainOk, true, JSON.stringify(d));
      assert.deepEqual(d.problems, []);
      assert.equal(d.latestTxid, maxTxid(d.name));
      assert.ok(d.latestTxid >= 6);
      // Without --db, lag is unknown; the newest object's age is reported as such.
      assert.equal(d.lagSeconds, null);
      assert.equal(d.lagKnown, "unknown");
      assert.ok(
        d.lastUpdateAgeSeconds >= 0 && d.lastUpdateAgeSeconds < 120,
        `age ${d.lastUpdateAgeSeconds}`,
      );
      assert.ok(Math.abs(Date.parse(d.lastUpdate) - Date.now()) < 120_000, d.lastUpdate);
      assert.equal(d.generations, 1);
    }
    const text = await walsync(["status", "-b", bucket.arg], { env: bucket.env });
    assert.equal(text.code, 0);
    // A database the bucket has no backup of is not healthy (like verify: exit 1, named).
    const missing = await walsync(["status", "c.db", "-b", bucket.arg, "--json"], {
      env: bucket.env,
    });
    assert.equal(missing.code, 1, missing.stdout);
    assert.equal(JSON.parse(missing.stdout).ok, false);
    assert.match(JSON.parse(missing.stdout).error.message, /no backup of c\.db/);
    assert.match(text.stdout, /✓ a\.db: txid \d+/);
    assert.match(text.stdout, /✓ b\.db: txid \d+/);

    const segments = objects.filter((o) => o.db === "a.db" && o.kind === "wal")
      .sort((x, y) => x.firstTxid - y.firstTxid);
    assert.ok(segments.length >= 3, `only ${segments.length} segments`);
    const middle = Math.floor(segments.length / 2);
    const gone = segments[middle];
    const after = segments[middle + 1];
    await removeObject(bucket, gone.key);

    const broken = await walsync(["status", "-b", bucket.arg, "--json"], { env: bucket.env });
    assert.equal(broken.code, 5, broken.stdout + broken.stderr);
    const brokenDoc = JSON.parse(broken.stdout);
    assert.equal(brokenDoc.ok, false);
    const [da, db] = brokenDoc.databases;
    assert.equal(da.chainOk, false);
    assert.equal(db.chainOk, true);
    assert.equal(da.problems.length, 1, da.problems.join("\n"));
    assert.match(da.problems[0], new RegExp(`gap before ${after.key.replace(/\./g, "\\.")}`));
    assert.match(da.problems[0], new RegExp(`expected txid ${gone.firstTxid}\\b`));
    const brokenText = await walsync(["status", "a.db", "-b", bucket.arg], { env: bucket.env });
    assert.equal(brokenText.code, 5);
    assert.match(brokenText.stdout, /✗ a\.db/);
    assert.match(brokenText.stdout, /gap before/);
    assert.doesNotMatch(brokenText.stdout, /b\.db/);

    // --deep also reads every object: a damaged segment of b.db, invisible to the listing.
    const damaged = objects.filter((o) => o.db === "b.db" && o.kind === "wal").at(-1)!;
    await tamper(bucket, damaged.key);
    const shallow = await walsync(["status", "b.db", "-b", bucket.arg, "--json"], {
      env: bucket.env,
    });
    assert.equal(shallow.code, 0, shallow.stdout);
    const deep = await walsync(["status", "b.db", "-b", bucket.arg, "--deep", "--json"], {
      env: bucket.env,
    });
    assert.equal(deep.code, 5, deep.stdout + deep.stderr);
    const deepDb = JSON.parse(deep.stdout).databases[0];
    assert.equal(deepDb.chainOk, false);
    assert.ok(
      deepDb.problems.some((p: string) => p.startsWith(`${damaged.key}: `)),
      deepDb.problems.join("\n"),
    );
  },
);

// ---------------------------------------------------------------------------------------------
// 7. Metrics

Deno.test(
  "metrics: watch --metrics-addr serves every family with db labels; bytes uploaded grow with writes",
  sdkTest,
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const port = freePort();
    const watch = startWalsync([
      "watch",
      db,
      "-b",
      bucket.arg,
      "--sync-interval",
      "100ms",
      "--metrics-addr",
      `127.0.0.1:${port}`,
    ]);
    try {
      await watch.waitForLog(/snapshot uploaded/);
      const url = `http://127.0.0.1:${port}/metrics`;
      const first = await httpGet(url);
      assert.ok(first, "nothing listening");
      assert.equal(first.status, 200);
      const before = parseMetrics(first.body);
      const families = [
        "walsync_replication_lag_seconds",
        "walsync_bytes_uploaded_total",
        "walsync_objects_uploaded_total",
        "walsync_sync_errors_total",
        "walsync_checksum_failures_total",
        "walsync_last_sync_timestamp_seconds",
      ];
      for (const name of families) {
        const s = before.filter((x) => x.name === name);
        assert.equal(s.length, 1, `${name} missing:\n${first.body}`);
        assert.equal(s[0].labels.db, "app.db", name);
        assert.match(first.body, new RegExp(`# TYPE ${name} (gauge|counter)`));
      }
      assert.match(first.body, /# TYPE walsync_bytes_uploaded_total counter/);
      const rss = before.find((s) => s.name === "process_resident_memory_bytes");
      assert.ok(rss && rss.value > 1_000_000, "process_resident_memory_bytes");
      const get = (samples: typeof before, name: string) =>
        samples.find((s) => s.name === name && s.labels.db === "app.db")!.value;
      const bytes0 = get(before, "walsync_bytes_uploaded_total");
      const objects0 = get(before, "walsync_objects_uploaded_total");
      assert.ok(bytes0 > 0, "the snapshot counts");

      for (let i = 1; i <= 20; i++) await commit(db, "m", i);
      let after = before;
      await waitUntil("the segments to be counted", async () => {
        const page = await httpGet(url);
        after = parseMetrics(page!.body);
        return get(after, "walsync_bytes_uploaded_total") > bytes0 &&
          get(after, "walsync_replication_lag_seconds") === 0;
      });
      assert.ok(get(after, "walsync_objects_uploaded_total") > objects0);
      assert.equal(get(after, "walsync_sync_errors_total"), 0);
      assert.equal(get(after, "walsync_checksum_failures_total"), 0);
      const lastSync = get(after, "walsync_last_sync_timestamp_seconds");
      assert.ok(Math.abs(lastSync - Date.now() / 1000) < 10, `last sync ${lastSync}`);
      const notFound = await httpGet(`http://127.0.0.1:${port}/`);
      assert.equal(notFound?.status, 404);
      assert.deepEqual(listeningPorts(watch.pid), [{ address: "127.0.0.1", port }]);
      assert.equal((await watch.stop()).code, 0);
    } finally {
      await watch.kill();
    }
    assert.equal(await httpGet(`http://127.0.0.1:${port}/metrics`), null, "stopped listening");
  },
);

Deno.test("metrics: --metrics-addr :PORT binds 127.0.0.1 only", sdkTest, async () => {
  assert.deepEqual(parseListenAddress(":9090"), { hostname: "127.0.0.1", port: 9090 });
  assert.deepEqual(parseListenAddress("0.0.0.0:9090"), { hostname: "0.0.0.0", port: 9090 });
  assert.deepEqual(parseListenAddress("[::1]:9090"), { hostname: "::1", port: 9090 });
  assert.throws(() => parseListenAddress("9090"), WalsyncError);
  assert.throws(() => parseListenAddress("host:99999"), WalsyncError);

  const bucket = await fileBucket();
  const dir = await workDir();
  const db = await appDatabase(dir);
  const port = freePort();
  const watch = startWalsync(["watch", db, "-b", bucket.arg, "--metrics-addr", `:${port}`]);
  try {
    await watch.waitForLog(/watching/);
    await waitUntil(
      "the metrics port",
      async () => (await httpGet(`http://127.0.0.1:${port}/metrics`)) !== null,
    );
    assert.deepEqual(listeningPorts(watch.pid), [{ address: "127.0.0.1", port }]);
    const other = otherLocalAddress();
    if (other) {
      assert.equal(
        await httpGet(`http://${other}:${port}/metrics`),
        null,
        `reachable through ${other}`,
      );
    }
    assert.equal((await watch.stop()).code, 0);
  } finally {
    await watch.kill();
  }
});

Deno.test(
  "metrics: an address in use or not on this machine is a usage error (exit 2) before anything is uploaded",
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      for (const addr of [`127.0.0.1:${port}`, "192.0.2.254:9090"]) {
        const r = await walsync(["watch", db, "-b", bucket.arg, "--metrics-addr", addr]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`metrics address ${escape(addr)} `));
        assert.doesNotMatch(r.stderr, /internal error/);
      }
      const config = join(dir, "walsync.yml");
      await Deno.writeTextFile(
        config,
        `metrics-addr: 127.0.0.1:${port}\ndatabases:\n  - path: ${db}\n    bucket: ${bucket.arg}\n`,
      );
      const r = await walsync(["watch", "--config", config]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /already in use/);
      assert.deepEqual(await bucket.keys(), [], "a snapshot was uploaded before failing");
    } finally {
      taken.close();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// 8. Replicate

Deno.test(
  "replicate: -o replica.db follows watch while a writer commits, stays readable and intact on every read, reaches the source; --once exits 0",
  sdkTest,
  async () => {
    const bucket = await fileBucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const replica = join(dir, "replica.db");
    const watch = startWalsync(["watch", db, "-b", bucket.arg, "--sync-interval", "100ms"]);
    await watch.waitForLog(/snapshot uploaded/).catch(async (err) => {
      await watch.kill();
      throw err;
    });
    const follower = startWalsync([
      "replicate",
      "app.db",
      "-b",
      bucket.arg,
      "-o",
      replica,
      "--interval",
      "200ms",
    ]);
    try {
      await follower.waitForLog(/replica restored/);
      let writing = true;
      const app = writer(db, { transactions: 150, pause: 0.02 }).finally(() => (writing = false));
      const counts: number[] = [];
      const problems: string[] = [];
      while (writing) {
        const r = await new Deno.Command("sqlite3", {
          args: [
            "-bail",
            "-cmd",
            ".timeout 5000",
            replica,
            "PRAGMA integrity_check; SELECT count(*) FROM events;",
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const [integrity, count] = new TextDecoder().decode(r.stdout).trim().split("\n");
        if (r.code !== 0 || integrity !== "ok") {
          problems.push(`exit ${r.code}: ${new TextDecoder().decode(r.stderr)} ${integrity}`);
        } else counts.push(Number(count));
        await sleep(100);
      }
      await app;
      assert.deepEqual(problems, []);
      assert.ok(counts.length >= 5, `only ${counts.length} reads during the updates`);
      assert.ok(new Set(counts).size >= 3, `the replica did not move: ${counts.join(",")}`);
      // Each transaction adds two rows net: a reader never sees the replica go back.
      assert.ok(counts.every((c, i) => i === 0 || c >= counts[i - 1]), `went back: ${counts}`);

      const want = await contentHash(db);
      await waitUntil("the replica to equal the source", async () => {
        return (await contentHash(replica)) === want;
      }, 30_000);
      assert.equal(await sqlite(replica, "PRAGMA integrity_check;"), "ok");
      assert.doesNotMatch(follower.log(), /ERROR/);
      const stopped = await follower.stop();
      assert.equal(stopped.code, 0, stopped.log);

      // The replica holds the whole database: as private as a restored file.
      assert.equal(await modeOf(replica), 0o600);

      const once = join(dir, "once.db");
      const r = await walsync(["replicate", "app.db", "-b", bucket.arg, "-o", once, "--once"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await contentHash(once), want);
      assert.equal(await modeOf(once), 0o600);
      // Again onto the existing, current replica.
      const again = await walsync([
        "replicate",
        "app.db",
        "-b",
        bucket.arg,
        "-o",
        replica,
        "--once",
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await contentHash(replica), want);
      assert.equal((await watch.stop()).code, 0);
    } finally {
      await follower.kill();
      await watch.kill();
    }
  },
);

Deno.test("replicate refuses to overwrite an existing database it did not make (no shadow beside it) unless --force: exit 2, the file untouched", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = await appDatabase(dir);
  const snap = await walsync(["snapshot", db, "-b", bucket.arg]);
  assert.equal(snap.code, 0, snap.stderr);
  // Someone else's database where the replica was meant to go (a typo in -o, say).
  const other = join(dir, "other.db");
  await sqlite(other, "CREATE TABLE precious(x); INSERT INTO precious VALUES ('keep me');");
  const before = await contentHash(other);
  const r = await walsync(["replicate", "app.db", "-b", bucket.arg, "-o", other, "--once"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /other\.db already exists.*--force/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.equal(await contentHash(other), before);
  const forced = await walsync([
    "replicate",
    "app.db",
    "-b",
    bucket.arg,
    "-o",
    other,
    "--once",
    "--force",
  ]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await contentHash(other), await contentHash(db));
  // What is not a regular file is never replaced, --force or not.
  const fifo = join(dir, "pipe");
  assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success, "mkfifo");
  const node = await walsync([
    "replicate",
    "app.db",
    "-b",
    bucket.arg,
    "-o",
    fifo,
    "--once",
    "--force",
  ]);
  assert.equal(node.code, 2, node.stderr);
  assert.match(node.stderr, /pipe is not a regular file/);
  assert.ok((await Deno.lstat(fifo)).isFifo);
});

Deno.test(
  "replicate: s3: follows a new generation when watch restarts; a reader holding a transaction on the replica keeps its snapshot and does not stop updates",
  sdkTest,
  async () => {
    const bucket = await s3Bucket();
    const dir = await workDir();
    const db = await appDatabase(dir);
    const replica = join(dir, "replica.db");
    const watchArgs = ["watch", db, "-b", bucket.arg, "--sync-interval", "100ms"];
    let watch = startWalsync(watchArgs, { env: bucket.env });
    let follower: ReturnType<typeof startWalsync> | undefined;
    const reader = new Deno.Command("sqlite3", {
      args: ["-bail", "-cmd", ".timeout 5000", replica],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
    let session: Deno.ChildProcess | undefined;
    try {
      await watch.waitForLog(/snapshot uploaded/);
      for (let i = 1; i <= 5; i++) await commit(db, "g1", i);
      await waitRestoresExactly(bucket, db, "app.db", dir);
      follower = startWalsync(
        ["replicate", "app.db", "-b", bucket.arg, "-o", replica, "--interval", "200ms"],
        { env: bucket.env },
      );
      const first = await contentHash(db);
      await waitUntil("the replica", async () => {
        try {
          return (await contentHash(replica)) === first;
        } catch {
          return false;
        }
      });
      const countBefore = await sqliteRead(replica, "SELECT count(*) FROM events;");

      // A reader opens a transaction on the replica and keeps it.
      session = reader.spawn();
      const input = session.stdin.getWriter();
      const lines = session.stdout.pipeThrough(new TextDecoderStream()).getReader();
      await input.write(new TextEncoder().encode("BEGIN; SELECT count(*) FROM events;\n"));
      let seen = "";
      while (!seen.includes("\n")) seen += (await lines.read()).value ?? "";
      assert.equal(seen.trim(), countBefore);

      // watch restarts: a new generation; more commits.
      assert.equal((await watch.stop()).code, 0);
      watch = startWalsync(watchArgs, { env: bucket.env });
      await watch.waitForLog(/snapshot uploaded/);
      for (let i = 1; i <= 5; i++) await commit(db, "g2", i);
      assert.equal((await generationsOf(bucket, "app.db")).length, 2);
      const second = await contentHash(db);
      await waitUntil("the replica to follow the new generation", async () => {
        return (await contentHash(replica)) === second;
      }, 30_000);
      assert.equal(await sqliteRead(replica, "PRAGMA integrity_check;"), "ok");

      // The held transaction still sees its snapshot.
      await input.write(new TextEncoder().encode("SELECT count(*) FROM events; COMMIT;\n"));
      await input.close();
      for (let chunk = await lines.read(); !chunk.done; chunk = await lines.read()) {
        seen += chunk.value;
      }
      const status = await session.status;
      const stderr = await new Response(session.stderr).text();
      session = undefined;
      assert.equal(status.code, 0, stderr);
      assert.deepEqual(seen.trim().split("\n"), [countBefore, countBefore], stderr);
      assert.match(follower.log(), /replica restored .*generation=/);
      assert.doesNotMatch(follower.log(), /ERROR/);
      assert.equal((await follower.stop()).code, 0);
      assert.equal((await watch.stop()).code, 0);
    } finally {
      if (session) {
        try {
          session.kill("SIGKILL");
        } catch { /* gone */ }
        await session.status;
      }
      await follower?.kill();
      await watch.kill();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// 9. Permissions

Deno.test("restore: the restored file is 0600 even with a permissive umask", sdkTest, async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const db = await appDatabase(dir);
  await Deno.chmod(db, 0o644);
  const snap = await walsync(["snapshot", db, "-b", bucket.arg]);
  assert.equal(snap.code, 0, snap.stderr);
  const out = join(dir, "out.db");
  const r = await new Deno.Command("bash", {
    args: [
      "-c",
      'umask 000 && exec "$@"',
      "bash",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      mainTs,
      "restore",
      "app.db",
      "-b",
      bucket.arg,
      "-o",
      out,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  assert.equal(await modeOf(out), 0o600);
  // --force over an existing world-readable file still leaves 0600.
  await Deno.chmod(out, 0o644);
  const forced = await walsync(["restore", "app.db", "-b", bucket.arg, "-o", out, "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await modeOf(out), 0o600);
});
