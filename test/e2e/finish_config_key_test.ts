/**
 * `signing-key:` in walsync.yml is the key of every command that takes `--config`, not only
 * `watch`: `restore --config` and `verify --config` check signatures with it (the
 * `WALSYNC_SIGNING_KEY` environment variable still works), and the key never appears in any
 * output.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileBucket } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { sqlite } from "../support/sqlite.ts";
import { mainTs, walsync } from "../support/walsync.ts";

const key = "config-key-0123456789abcdef";

/** A config naming `path` with one replica, signed with `signingKey`. */
async function writeConfig(
  dir: string,
  file: string,
  path: string,
  bucketArg: string,
  signingKey: string,
): Promise<string> {
  const config = join(dir, file);
  await Deno.writeTextFile(
    config,
    `sync-interval: 100ms
signing-key: ${signingKey}
databases:
  - path: ${path}
    replicas:
      - bucket: ${bucketArg}
`,
  );
  return config;
}

Deno.test("restore --config and verify --config check signatures with the config's signing-key", async () => {
  const bucket = await fileBucket();
  const dir = await workDir();
  const path = join(dir, "app.db");
  await sqlite(path, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);");
  const config = await writeConfig(dir, "walsync.yml", path, bucket.arg, key);
  const wrong = await writeConfig(dir, "wrong.yml", path, bucket.arg, "another-key-987654321");
  // watch --config (startWatch always passes --bucket), stopped once the snapshot is up.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", mainTs, "watch", "--config", config],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  while (!/snapshot uploaded/.test(log)) {
    const { value, done } = await stderr.read();
    if (done) break;
    log += value;
  }
  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await stderr.read();
    if (done) break;
    log += value;
  }
  assert.equal((await child.status).code, 0, log);
  assert.match(log, /snapshot uploaded/);

  const out = join(dir, "restored.db");
  const restored = await walsync(["restore", "app.db", "--config", config, "-o", out]);
  assert.equal(restored.code, 0, restored.stdout + restored.stderr);
  assert.match(restored.stdout, /signed, signatures checked/);

  const verified = await walsync(["verify", "app.db", "--config", config]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /signed, signatures checked/);
  const deep = await walsync(["verify", "app.db", "--config", config, "--deep", "--json"]);
  assert.equal(deep.code, 0, deep.stdout + deep.stderr);
  assert.equal(JSON.parse(deep.stdout).replicas[0].signatureChecked, true);

  // The wrong key is a forged history as far as the reader can tell: exit 5.
  const badRestore = await walsync([
    "restore",
    "app.db",
    "--config",
    wrong,
    "-o",
    join(dir, "bad.db"),
  ]);
  assert.equal(badRestore.code, 5, badRestore.stdout + badRestore.stderr);
  const badVerify = await walsync(["verify", "app.db", "--config", wrong, "--json"]);
  assert.equal(badVerify.code, 5, badVerify.stdout + badVerify.stderr);

  // The environment variable still works without a config.
  const envVerify = await walsync(["verify", "app.db", "-b", bucket.arg], {
    env: { WALSYNC_SIGNING_KEY: key },
  });
  assert.equal(envVerify.code, 0, envVerify.stdout + envVerify.stderr);
  assert.match(envVerify.stdout, /signed, signatures checked/);

  for (const r of [restored, verified, deep, badRestore, badVerify, envVerify]) {
    assert.ok(!(r.stdout + r.stderr).includes(key), "the key never appears in output");
  }
  assert.ok(!log.includes(key));
});

Deno.test("verify --config and --bucket together is a usage error", async () => {
  const dir = await workDir();
  const bucket = await fileBucket();
  const config = await writeConfig(dir, "walsync.yml", join(dir, "app.db"), bucket.arg, key);
  const r = await walsync(["verify", "app.db", "--config", config, "-b", bucket.arg]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /give --bucket or --config, not both/);
});
