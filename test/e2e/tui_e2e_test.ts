/**
 * The restore wizard on a real 80x24 terminal (tmux), driven by keys, against backups the CLI
 * itself made: a default restore that matches the source row for row, a tampered backup that
 * stops with nothing written, Ctrl-C mid-restore that leaves nothing behind, and the
 * non-terminal uses that must never open the wizard.
 * @module
 */
import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import { filesIn } from "../support/files.ts";
import { sqliteRead } from "../support/sqlite.ts";
import { mainTs } from "../support/walsync.ts";

const assert: typeof nodeAssert.ok = nodeAssert.ok;
const assertEquals: typeof nodeAssert.deepStrictEqual = nodeAssert.deepStrictEqual;
const assertMatch: typeof nodeAssert.match = nodeAssert.match;
const assertNotMatch: typeof nodeAssert.doesNotMatch = nodeAssert.doesNotMatch;

const deno = Deno.execPath();
const decoder = new TextDecoder();

function hasCommand(name: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
      .outputSync()
      .success;
  } catch {
    return false;
  }
}

const tmuxMissing = !hasCommand("tmux");
if (tmuxMissing) console.warn("tui_e2e_test: tmux is not installed; skipping the terminal tests");

// One tmux server for this file, on its own socket: other test runs and the user's own tmux
// are never touched, and killing it at the end removes every session this file made.
const socket = `walsync-e2e-${Deno.pid}`;

async function tmux(...args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", {
    args: ["-L", socket, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(`tmux ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\-.,:/=@+%]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A shell in an 80x24 tmux pane. */
interface Pane {
  /** Types a command line and presses Enter. */
  run(command: string): Promise<void>;
  /** Sends tmux key names (`Enter`, `Escape`, `C-c`, `Down`) or, with `literal`, text. */
  keys(...keys: string[]): Promise<void>;
  /** Types text as it is. */
  type(text: string): Promise<void>;
  /** The screen as text (with `escapes`, with its colour codes). */
  screen(escapes?: boolean): Promise<string>;
  /** Polls the screen until it shows `expected`; returns it. */
  waitFor(expected: string | RegExp, timeoutMs?: number): Promise<string>;
  /** Process id of the command the shell is running (the wizard). */
  foregroundPid(): Promise<number>;
  /** Ends the session. */
  close(): Promise<void>;
}

let sessions = 0;
let keeper: Promise<string> | undefined;

/**
 * A session that keeps the tmux server up between tests (it exits with its last session, and
 * a new session racing a dying server fails) and ends itself when this test process is gone.
 */
function keepServer(): Promise<string> {
  keeper ??= tmux(
    "new-session",
    "-d",
    "-s",
    "keeper",
    `sh -c 'while kill -0 ${Deno.pid} 2>/dev/null; do sleep 1; done'`,
  );
  return keeper;
}

async function openPane(cwd: string, env: Record<string, string> = {}): Promise<Pane> {
  const name = `s${++sessions}`;
  await keepServer();
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  // PS1 through env(1): bash ignores a PS1 that tmux puts in the session environment.
  const shell = "env 'PS1=PROMPT$ ' bash --norc --noprofile";
  await tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", name, "-c", cwd, ...envArgs, shell);
  // Keep the pane exactly 80x24 whatever the attached-client logic decides.
  await tmux("set-option", "-t", name, "window-size", "manual").catch(() => {});
  const pane: Pane = {
    async run(command) {
      await pane.waitFor("PROMPT$");
      await tmux("send-keys", "-t", name, "-l", command);
      await tmux("send-keys", "-t", name, "Enter");
    },
    async keys(...keys) {
      for (const key of keys) {
        await tmux("send-keys", "-t", name, key);
        // ink reads a burst of keys as one chunk and may misparse it; real typing has gaps.
        await new Promise((r) => setTimeout(r, 60));
      }
    },
    async type(text) {
      await tmux("send-keys", "-t", name, "-l", text);
      await new Promise((r) => setTimeout(r, 60));
    },
    async screen(escapes = false) {
      return await tmux("capture-pane", "-p", ...(escapes ? ["-e"] : []), "-t", name);
    },
    async waitFor(expected, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const text = await pane.screen();
        if (typeof expected === "string" ? text.includes(expected) : expected.test(text)) {
          // Drawn is not yet listening: give the new screen's key handlers a moment to attach.
          await new Promise((r) => setTimeout(r, 80));
          return text;
        }
        if (Date.now() > deadline) {
          throw new Error(`the terminal never showed ${expected}; it shows:\n${text}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async foregroundPid() {
      const shell = (await tmux("display-message", "-p", "-t", name, "#{pane_pid}")).trim();
      const out = await new Deno.Command("pgrep", { args: ["-P", shell], stdout: "piped" })
        .output();
      const pids = decoder.decode(out.stdout).trim().split("\n").filter(Boolean).map(Number);
      assertEquals(pids.length, 1, `expected one command under the shell, found ${pids.join(" ")}`);
      return pids[0];
    },
    async close() {
      await tmux("kill-session", "-t", name).catch(() => {});
    },
  };
  return pane;
}

/** Runs `walsync` outside any terminal. */
async function walsync(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(deno, {
    args: ["run", "-A", "--quiet", mainTs, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: out.stdout, stderr: decoder.decode(out.stderr) };
}

/** The wizard's command line, run in a pane, with its exit code printed after it. */
function wizardCommand(bucket: string, extra = ""): string {
  // ink renders only a final frame when it believes it runs in CI; a terminal user never is.
  return `env -u CI -u CONTINUOUS_INTEGRATION -u NO_COLOR ${extra}${
    shellQuote(deno)
  } run -A --quiet ${shellQuote(mainTs)} restore --bucket ${shellQuote(bucket)}; echo "EXIT=$?"`;
}

async function snapshotObject(
  bucketDir: string,
  db: string,
): Promise<{ path: string; key: string; sha256: string }> {
  const find = await new Deno.Command("find", {
    args: [join(bucketDir, db), "-type", "f", "-path", "*/snapshots/*.db"],
    stdout: "piped",
  }).output();
  const path = decoder.decode(find.stdout).trim().split("\n")[0];
  const meta = JSON.parse(await Deno.readTextFile(`${path}.meta.json`));
  return { path, key: path.slice(bucketDir.length + 1), sha256: meta.sha256 };
}

/** The scripted command on the summary screen, its ` \` continuations joined, as words. */
function scriptedCommandOn(screen: string): string[] {
  const lines = screen.split("\n");
  const start = lines.findIndex((line) => line.includes("The same restore as a command:")) + 1;
  assert(start > 0, `no command line on screen:\n${screen}`);
  let text = "";
  for (const line of lines.slice(start)) {
    const trimmed = line.trim();
    if (!trimmed.endsWith(" \\")) {
      text += trimmed;
      break;
    }
    text += trimmed.slice(0, -1);
  }
  assertNotMatch(text, /['"]/, "the test paths need no quoting");
  return text.split(/\s+/);
}

interface Fixture {
  root: string;
  bucketDir: string;
  source: string;
  fingerprint: string;
}

let fixture: Promise<Fixture> | undefined;
/** Set as soon as the fixture directory exists, for the clean-up at exit. */
let fixtureRoot: string | undefined;

/** A database with a few thousand rows and an index, backed up by `walsync snapshot`. */
function sharedFixture(): Promise<Fixture> {
  fixture ??= (async () => {
    const root = await Deno.makeTempDir({ prefix: "walsync-tui-e2e-" });
    fixtureRoot = root;
    const source = join(root, "app.db");
    await sqliteRead(
      source,
      `PRAGMA journal_mode=WAL;
       CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, amount REAL, note BLOB);
       CREATE INDEX t_name ON t(name);
       WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4000)
       INSERT INTO t SELECT i, 'customer-' || (i * 7919 % 4000), i * 1.25, randomblob(40) FROM c;
       CREATE TABLE audit(at TEXT, what TEXT);
       INSERT INTO audit VALUES ('2026-11-24T10:00:00Z', 'created');`,
    );
    const bucketDir = join(root, "bucket");
    const snap = await walsync(["snapshot", source, "--bucket", `file://${bucketDir}`]);
    assertEquals(snap.code, 0, snap.stderr);
    const fingerprint = await sqliteRead(
      source,
      "SELECT hex(sha3_query('SELECT * FROM t ORDER BY id'))",
    );
    return { root, bucketDir, source, fingerprint };
  })();
  return fixture;
}

const e2e = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: tmuxMissing, fn, sanitizeOps: false, sanitizeResources: false });

e2e(
  "Enter through every default restores the latest backup into a new, identical file",
  async () => {
    const { root, bucketDir, source, fingerprint } = await sharedFixture();
    const snapshot = await snapshotObject(bucketDir, "app.db");
    const out = await Deno.makeTempDir({ dir: root, prefix: "out-" });
    const pane = await openPane(out);
    try {
      await pane.run(wizardCommand(`file://${bucketDir}`));

      let screen = await pane.waitFor("Step 2 of 6: Choose a database");
      assertMatch(
        screen,
        new RegExp(
          `› app\\.db\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\s+[\\d.]+ KiB\\s+${
            snapshot.sha256.slice(0, 12)
          }…`,
        ),
      );
      await pane.keys("Enter");

      screen = await pane.waitFor("Step 3 of 6: Choose the point to restore");
      assertMatch(screen, /› Latest backup: txid 0, .* \(default\)/);
      await pane.keys("Enter");

      screen = await pane.waitFor("Step 4 of 6");
      assertMatch(screen, /File: \.\/app-restored-\d{8}T\d{6}Z\.db/);
      await pane.keys("Enter");

      screen = await pane.waitFor("Step 5 of 6: Ready to restore");
      assertMatch(screen, /✓ a new file; nothing existing is touched/);
      const command = scriptedCommandOn(screen);
      assertEquals(command.slice(0, 5), [
        "walsync",
        "restore",
        "app.db",
        "--bucket",
        `file://${bucketDir}`,
      ]);
      assertMatch(command.join(" "), /-o \.\/app-restored-\d{8}T\d{6}Z\.db$/);
      // Esc goes back a step on a real terminal too; Enter comes forward again.
      await pane.keys("Escape");
      await pane.waitFor("Step 4 of 6");
      await pane.keys("Enter");
      await pane.waitFor("Step 5 of 6");
      await pane.keys("Enter");

      screen = await pane.waitFor("Enter or q exit");
      assertMatch(screen, new RegExp(`✓ Checksum verified: ${snapshot.sha256.slice(0, 12)}…`));
      assertMatch(screen, /✓ PRAGMA integrity_check: ok/);
      assertMatch(screen, /t\s+4,000 rows/);
      assertMatch(screen, /audit\s+1 row$/m);
      assert(screen.replace(/\n\s*/g, "").includes(`Written to ${out}/app-restored-`), screen);
      await pane.keys("Enter");
      screen = await pane.waitFor(/EXIT=0\s*\nPROMPT\$/);

      const files = await filesIn(out);
      assertEquals(files.length, 1, files.join(", "));
      assertMatch(files[0], /^app-restored-\d{8}T\d{6}Z\.db$/);
      const restored = join(out, files[0]);
      assertEquals(await sqliteRead(restored, "PRAGMA integrity_check"), "ok");
      assertEquals(
        await sqliteRead(restored, "SELECT hex(sha3_query('SELECT * FROM t ORDER BY id'))"),
        fingerprint,
      );
      assertEquals(
        await sqliteRead(restored, "SELECT count(*) FROM t"),
        await sqliteRead(source, "SELECT count(*) FROM t"),
      );

      // The command line the summary showed does the same restore without the wizard.
      const elsewhere = await Deno.makeTempDir({ dir: root, prefix: "scripted-" });
      const scripted = await new Deno.Command(deno, {
        args: ["run", "-A", "--quiet", mainTs, ...command.slice(1)],
        cwd: elsewhere,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(scripted.code, 0, decoder.decode(scripted.stderr));
      const again = join(elsewhere, files[0]);
      assertEquals(
        await sqliteRead(again, "SELECT hex(sha3_query('SELECT * FROM t ORDER BY id'))"),
        fingerprint,
      );
    } finally {
      await pane.close();
    }
  },
);

e2e(
  "a tampered snapshot stops on a red screen naming the object, and nothing is written",
  async () => {
    const { root, bucketDir } = await sharedFixture();
    // A copy of the bucket with one byte of the snapshot flipped.
    const bad = join(root, "bucket-tampered");
    await new Deno.Command("cp", { args: ["-r", bucketDir, bad] }).output();
    const snapshot = await snapshotObject(bad, "app.db");
    const bytes = await Deno.readFile(snapshot.path);
    bytes[bytes.length - 100] ^= 0xff;
    await Deno.writeFile(snapshot.path, bytes);
    const out = await Deno.makeTempDir({ dir: root, prefix: "out-" });
    const pane = await openPane(out);
    try {
      await pane.run(wizardCommand(`file://${bad}`));
      await pane.waitFor("Step 2 of 6");
      await pane.keys("Enter");
      await pane.waitFor("Step 3 of 6");
      await pane.keys("Enter");
      await pane.waitFor("Step 4 of 6");
      await pane.keys("Enter");
      await pane.waitFor("Step 5 of 6");
      await pane.keys("Enter");

      const screen = await pane.waitFor("CHECKSUM FAILED");
      const joined = screen.replace(/\n /g, " ");
      assert(joined.includes(snapshot.key), `object key ${snapshot.key} not on screen:\n${screen}`);
      assertMatch(screen, new RegExp(`Expected\\s+${snapshot.sha256}`));
      assertMatch(screen, /Actual\s+[0-9a-f]{64}/);
      assertMatch(screen, /Nothing was written/);
      assertMatch(screen, /walsync verify app\.db/);
      assertMatch(screen, /earlier restore point/);
      await pane.keys("q");
      await pane.waitFor(/EXIT=5\s*\nPROMPT\$/);
      // Not the output, not a temporary file, not a -wal: nothing at all.
      assertEquals(await filesIn(out), []);
    } finally {
      await pane.close();
    }
  },
);

/** A ~150 MB database in its own bucket: big enough that a restore is still running when a test interrupts it. */
let bigFixture: Promise<string> | undefined;
function bigBucket(): Promise<string> {
  bigFixture ??= (async () => {
    const { root } = await sharedFixture();
    const big = join(root, "big.db");
    await sqliteRead(
      big,
      `CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB);
       WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 150)
       INSERT INTO blobs SELECT i, randomblob(1000000) FROM c;`,
    );
    const bucket = join(root, "bucket-big");
    const snap = await walsync(["snapshot", big, "--bucket", `file://${bucket}`]);
    assertEquals(snap.code, 0, snap.stderr);
    await Deno.remove(big);
    return bucket;
  })();
  return bigFixture;
}

/** Starts the wizard on the big database and accepts every default up to the running restore. */
async function startBigRestore(pane: Pane): Promise<void> {
  await pane.run(wizardCommand(`file://${await bigBucket()}`));
  for (const step of ["Step 2 of 6", "Step 3 of 6", "Step 4 of 6", "Step 5 of 6"]) {
    await pane.waitFor(step);
    await pane.keys("Enter");
  }
  await pane.waitFor("Restoring big.db", 10_000);
}

e2e(
  "Ctrl-C during a restore cancels it, leaves nothing behind, and gives the terminal back",
  async () => {
    const { root } = await sharedFixture();
    const out = await Deno.makeTempDir({ dir: root, prefix: "out-" });
    const pane = await openPane(out);
    try {
      await startBigRestore(pane);
      await pane.keys("C-c");

      const screen = await pane.waitFor(/EXIT=130\s*\nPROMPT\$/);
      assertMatch(screen, /Restore cancelled\. The temporary file was removed/);
      assertEquals(await filesIn(out), []);

      // The terminal is back in cooked mode with echo on, and the shell works.
      await pane.run(
        "stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo",
      );
      const after = await pane.waitFor(/^-?icanon -?echo\s*$/m);
      assertEquals(/^(-?icanon -?echo)\s*$/m.exec(after)?.[1], "icanon echo");
    } finally {
      await pane.close();
    }
  },
);

e2e("a hang-up (the SSH connection dropping) mid-restore cleans up like Ctrl-C", async () => {
  const { root } = await sharedFixture();
  const out = await Deno.makeTempDir({ dir: root, prefix: "out-" });
  const pane = await openPane(out);
  try {
    await startBigRestore(pane);
    const wizard = await pane.foregroundPid();
    Deno.kill(wizard, "SIGHUP");
    const screen = await pane.waitFor(/EXIT=130\s*\nPROMPT\$/);
    assertMatch(screen, /Restore cancelled/);
    assertEquals(await filesIn(out), []);
  } finally {
    await pane.close();
  }
});

e2e("a point in the middle of the WAL restores exactly the commits up to it", async () => {
  const { root } = await sharedFixture();
  const live = join(root, "live.db");
  await sqliteRead(
    live,
    "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
  );
  const bucketDir = join(root, "bucket-wal");
  const watch = new Deno.Command(deno, {
    args: [
      "run",
      "-A",
      "--quiet",
      mainTs,
      "watch",
      live,
      "--bucket",
      `file://${bucketDir}`,
      "--sync-interval",
      "100ms",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const objects = async (pattern: string): Promise<number> => {
    const find = await new Deno.Command("find", {
      // Files only: the database's directory (`live.db/`, with its lease) also ends in .db.
      args: [bucketDir, "-type", "f", "-name", pattern],
      stdout: "piped",
    }).output();
    return decoder.decode(find.stdout).split("\n").filter(Boolean).length;
  };
  const shipped = async (pattern: string, count: number, what: string): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while ((await objects(pattern)) < count) {
      if (Date.now() > deadline) throw new Error(`watch did not ship ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    // Watch is ready once its first snapshot is up; then one commit per segment.
    await shipped("*.db", 1, "its first snapshot");
    for (let i = 1; i <= 3; i++) {
      await sqliteRead(live, `INSERT INTO t(v) VALUES ('row ${i}')`);
      await shipped("*.wal", i, `commit ${i}`);
    }
  } finally {
    watch.kill("SIGTERM");
    await watch.status;
  }
  const out = await Deno.makeTempDir({ dir: root, prefix: "out-" });
  const pane = await openPane(out);
  try {
    await pane.run(wizardCommand(`file://${bucketDir}`));
    await pane.waitFor("Step 2 of 6");
    await pane.keys("Enter");
    let screen = await pane.waitFor("Step 3 of 6");
    assertMatch(screen, /› Latest backup: txid 3,/);
    // Rows: latest, a typed time, then newest first: 3-3, 2-2, 1-1, the snapshot.
    await pane.keys("Down", "Down", "Down");
    screen = await pane.waitFor(/^ › .*wal\s+txid 2-2\s/m);
    await pane.keys("Enter");
    await pane.waitFor("Step 4 of 6");
    await pane.keys("Enter");
    screen = await pane.waitFor("Step 5 of 6");
    assertMatch(screen, /--txid 2\b/);
    await pane.keys("Enter");
    screen = await pane.waitFor("Enter or q exit");
    assertMatch(screen, /State at txid 2,/);
    assertMatch(screen, /t\s+2 rows/);
    await pane.keys("q");
    await pane.waitFor(/EXIT=0\s*\nPROMPT\$/);
    const files = await filesIn(out);
    assertEquals(files.length, 1);
    assertEquals(
      await sqliteRead(join(out, files[0]), "SELECT group_concat(v, ',') FROM t"),
      "row 1,row 2",
    );
  } finally {
    await pane.close();
  }
});

e2e("an existing output needs y; n keeps it and asks for another path", async () => {
  const { root, bucketDir } = await sharedFixture();
  const out = await Deno.makeTempDir({ dir: root, prefix: "out-" });
  const precious = join(out, "precious.db");
  await Deno.writeTextFile(precious, "not to be replaced");
  const pane = await openPane(out);
  try {
    await pane.run(wizardCommand(`file://${bucketDir}`));
    await pane.waitFor("Step 2 of 6");
    await pane.keys("Enter");
    await pane.waitFor("Step 3 of 6");
    await pane.keys("Enter");
    await pane.waitFor("Step 4 of 6");
    await pane.keys("C-u");
    await pane.type("precious.db");
    await pane.keys("Enter");
    let screen = await pane.waitFor("This would REPLACE");
    assertMatch(screen, new RegExp(`${precious.replaceAll(".", "\\.")}`));
    await pane.keys("Enter"); // not an answer
    await pane.keys("n");
    screen = await pane.waitFor("Enter next · Esc back");
    assertNotMatch(screen, /This would REPLACE/);
    await pane.keys("C-c");
    await pane.waitFor(/EXIT=130\s*\nPROMPT\$/);
    assertEquals(await Deno.readTextFile(precious), "not to be replaced");
    assertEquals(await filesIn(out), ["precious.db"]);
  } finally {
    await pane.close();
  }
});

e2e("with NO_COLOR the wizard draws no colour, and without it, it does", async () => {
  const { root, bucketDir } = await sharedFixture();
  for (const noColor of [true, false]) {
    const pane = await openPane(root);
    try {
      await pane.run(wizardCommand(`file://${bucketDir}`, noColor ? "NO_COLOR=1 " : ""));
      await pane.waitFor("Step 2 of 6");
      const screen = await pane.screen(true);
      // deno-lint-ignore no-control-regex
      const colour = /\x1b\[(?:[0-9;]*;)?(?:3[0-7]|4[0-7]|9[0-7]|38;[0-9;]+)m/;
      if (noColor) assertNotMatch(screen, colour);
      else assertMatch(screen, colour);
      assertMatch(screen, /› app\.db/);
      await pane.keys("C-c");
      await pane.waitFor(/EXIT=130\s*\nPROMPT\$/);
    } finally {
      await pane.close();
    }
  }
});

e2e(
  "piped: `restore --bucket B | cat` on a terminal prints a usage error and exits 2, no wizard",
  async () => {
    const { root, bucketDir } = await sharedFixture();
    const pane = await openPane(root);
    try {
      await pane.run(
        `${shellQuote(deno)} run -A --quiet ${
          shellQuote(mainTs)
        } restore --bucket file://${bucketDir} | cat; echo "EXIT=\${PIPESTATUS[0]}"`,
      );
      const screen = await pane.waitFor(/EXIT=\d+/, 20_000);
      assertMatch(screen, /EXIT=2\b/);
      assertMatch(screen, /restore needs a database name/);
      assertNotMatch(screen, /Step \d of 6/);
    } finally {
      await pane.close();
    }
  },
);

Deno.test("piped: `list --json | cat` prints one JSON document and no escape codes", async () => {
  const { bucketDir } = await sharedFixture();
  const out = await walsync(["list", "--bucket", `file://${bucketDir}`, "--json"]);
  assertEquals(out.code, 0, out.stderr);
  assert(!out.stdout.includes(0x1b), "stdout has an escape code");
  assert(!out.stderr.includes("\x1b"), "stderr has an escape code");
  const doc = JSON.parse(decoder.decode(out.stdout));
  assertEquals(doc.databases.map((d: { name: string }) => d.name), ["app.db"]);
});

e2e("MinIO: the default restore works against S3 storage", async () => {
  let harness: typeof import("../support/minio.ts");
  try {
    harness = await import("../support/minio.ts");
    harness.findMinioBinary();
  } catch (err) {
    console.warn(
      `tui_e2e_test: skipping the MinIO run: ${err instanceof Error ? err.message : err}`,
    );
    return;
  }
  const { root, source, fingerprint } = await sharedFixture();
  const minio = await harness.sharedMinio();
  const bucket = `s3://${minio.bucket}/tui-e2e-${crypto.randomUUID().slice(0, 8)}`;
  const snap = await walsync(["snapshot", source, "--bucket", bucket], minio.env);
  assertEquals(snap.code, 0, snap.stderr);
  const out = await Deno.makeTempDir({ dir: root, prefix: "out-s3-" });
  const pane = await openPane(out, minio.env);
  try {
    await pane.run(wizardCommand(bucket));
    const screen = await pane.waitFor("Step 2 of 6");
    assertMatch(screen, new RegExp(`Bucket s3://${minio.bucket}/tui-e2e-`));
    for (const step of ["Step 3 of 6", "Step 4 of 6", "Step 5 of 6", "Enter or q exit"]) {
      await pane.keys("Enter");
      await pane.waitFor(step);
    }
    assertMatch(await pane.screen(), /✓ Checksum verified: [0-9a-f]{12}…/);
    await pane.keys("Enter");
    await pane.waitFor(/EXIT=0\s*\nPROMPT\$/);
    const files = await filesIn(out);
    assertEquals(files.length, 1);
    const restored = join(out, files[0]);
    assertEquals(await sqliteRead(restored, "PRAGMA integrity_check"), "ok");
    assertEquals(
      await sqliteRead(restored, "SELECT hex(sha3_query('SELECT * FROM t ORDER BY id'))"),
      fingerprint,
    );
  } finally {
    await pane.close();
  }
});

// When the test process ends, however it ends (a filtered run, a failure): remove the tmux
// server, its socket file and the fixture directory.
globalThis.addEventListener("unload", () => {
  if (!tmuxMissing) {
    try {
      new Deno.Command("tmux", {
        args: ["-L", socket, "kill-server"],
        stdout: "null",
        stderr: "null",
      })
        .outputSync();
      Deno.removeSync(`${Deno.env.get("TMUX_TMPDIR") ?? "/tmp"}/tmux-${Deno.uid()}/${socket}`);
    } catch {
      // no server was started, or it removed its socket itself
    }
  }
  if (fixtureRoot) {
    try {
      Deno.removeSync(fixtureRoot, { recursive: true });
    } catch {
      // already gone
    }
  }
});
