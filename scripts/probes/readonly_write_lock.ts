/**
 * Probe for docs/sqlite-facts.md fact 10: a process that may read a live WAL database but not
 * write it (the application runs as another user) gets `BEGIN IMMEDIATE` without SQLite's
 * write lock, and the application commits under it; a write inside that transaction fails
 * ("attempt to write a readonly database"). When only the `-shm` is read-only for it,
 * `BEGIN IMMEDIATE` itself fails that way.
 *
 * Run as root (the reader runs as `nobody`): deno run -A scripts/probes/readonly_write_lock.ts
 * Expect: "database and -shm read-only: BEGIN IMMEDIATE ok; the application committed under it;
 * a write fails: attempt to write a readonly database", then "-shm read-only: BEGIN IMMEDIATE
 * fails: attempt to write a readonly database". Needs `sqlite3` and `setpriv`.
 * @module
 */

/** Run as `nobody`: takes "the write lock", says so, waits, then tries a write. */
const reader = `
import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(Deno.args[0], { timeout: 5 });
try {
  db.prepare("PRAGMA schema_version").get();
  db.exec("BEGIN IMMEDIATE");
  console.log("begun");
  await new Promise((resolve) => setTimeout(resolve, 1000));
  try {
    db.exec("INSERT INTO t VALUES (4)");
    console.log("a write works");
  } catch (err) {
    console.log("a write fails: " + err.message);
  }
} catch (err) {
  console.log("BEGIN IMMEDIATE fails: " + err.message);
}
`;

const run = (cmd: string, args: string[]) => new Deno.Command(cmd, { args }).outputSync();

async function trial(label: string, dir: string, modes: { db: number; shm: number }) {
  const path = `${dir}/${label.replace(/\W+/g, "-")}.db`;
  run("sqlite3", [path, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);"]);
  // The application (root) keeps the database open, so its -wal and -shm stay.
  const app = new Deno.Command("sqlite3", { args: [path], stdin: "piped" }).spawn();
  const appIn = app.stdin.getWriter();
  await appIn.write(new TextEncoder().encode("INSERT INTO t VALUES (2);\n"));
  while (run("test", ["-e", `${path}-shm`]).code !== 0) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  Deno.chmodSync(path, modes.db);
  Deno.chmodSync(`${path}-shm`, modes.shm);
  const child = new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "env",
      `DENO_DIR=${dir}/deno-dir`,
      `${dir}/deno`,
      "run",
      "-A",
      `${dir}/reader.ts`,
      path,
    ],
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = (await lines.read()).value ?? "";
  let said = first.trim();
  if (first.startsWith("begun")) {
    // A fresh writer with no busy timeout: a held write lock makes it fail at once.
    const other = run("sqlite3", [path, "INSERT INTO t VALUES (3);"]);
    said = `BEGIN IMMEDIATE ok; ${
      other.code === 0 ? "the application committed under it" : "the lock held the application off"
    }`;
    said += `; ${((await lines.read()).value ?? "").trim()}`;
  }
  await child.status;
  await appIn.close();
  await app.status;
  return `${label}: ${said}`;
}

if (Deno.uid() !== 0) throw new Error("run as root: the reader runs as nobody");
const dir = Deno.makeTempDirSync({ prefix: "walsync-probe-" });
try {
  Deno.chmodSync(dir, 0o755);
  // nobody can neither read root's home (where Deno may live) nor write root's cache.
  Deno.copyFileSync(Deno.execPath(), `${dir}/deno`);
  Deno.chmodSync(`${dir}/deno`, 0o755);
  Deno.mkdirSync(`${dir}/deno-dir`, { mode: 0o777 });
  Deno.chmodSync(`${dir}/deno-dir`, 0o777);
  Deno.writeTextFileSync(`${dir}/reader.ts`, reader);
  Deno.chmodSync(`${dir}/reader.ts`, 0o644);
  console.log(await trial("database and -shm read-only", dir, { db: 0o644, shm: 0o644 }));
  console.log(await trial("-shm read-only", dir, { db: 0o666, shm: 0o644 }));
} finally {
  Deno.removeSync(dir, { recursive: true });
}
