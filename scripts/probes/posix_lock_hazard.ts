/**
 * Probe for docs/sqlite-facts.md fact 1: in a process that holds a SQLite connection, closing any
 * other descriptor of the database file drops the POSIX locks SQLite holds on it. Another process
 * (the sqlite3 CLI here) then believes it is the last connection, and its checkpoint deletes `-wal`
 * and `-shm` while this process still uses them.
 *
 * Run: deno run -A scripts/probes/posix_lock_hazard.ts
 * Expect: after "descriptor closed", this process's open files list `-wal` and `-shm` as
 * "(deleted)". Needs the `sqlite3` CLI.
 * @module
 */
import { DatabaseSync } from "node:sqlite";

const decoder = new TextDecoder();

/** Runs a command and returns what it printed on stdout and stderr. */
function run(command: string, args: string[]): string {
  const out = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).outputSync();
  return (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim();
}

/** Lets the other process write and checkpoint, then shows this process's view of the files. */
function report(label: string, path: string): void {
  const sql = "INSERT INTO t VALUES (2); PRAGMA wal_checkpoint(TRUNCATE);";
  console.log(`${label}: sqlite3 says ${run("sqlite3", [path, ".timeout 500", sql])}`);
  const ours = run("bash", ["-c", `ls -l /proc/${Deno.pid}/fd | grep -F "${path}" || true`]);
  console.log(ours || "(no descriptors of the database)");
}

const dir = Deno.makeTempDirSync({ prefix: "walsync-probe-" });
const path = `${dir}/lock.db`;
run("sqlite3", [path, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);"]);

const db = new DatabaseSync(path);
console.log("SQLite", db.prepare("SELECT sqlite_version() AS v").get());
db.exec("BEGIN");
db.prepare("SELECT count(*) FROM t").get();
report("connection holds a read transaction", path);

Deno.openSync(path).close();
report("descriptor closed", path);

db.exec("COMMIT");
db.close();
Deno.removeSync(dir, { recursive: true });
