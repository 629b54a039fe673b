/**
 * Probe for docs/sqlite-facts.md fact 9: in a process that holds a SQLite connection, an
 * asynchronous read of a descriptor of the database file (`await file.read(…)`) drops SQLite's
 * POSIX locks on it, as closing a descriptor does (fact 1): Deno runs the read on a duplicate of
 * the descriptor and closes the duplicate. A synchronous read (`file.readSync(…)`) keeps them.
 *
 * Run: deno run -A scripts/probes/async_read_lock.ts
 * Expect: "sync read: WAL kept", then "async read: WAL deleted" (the sqlite3 CLI, believing
 * itself the last connection, checkpointed and deleted the WAL in use here). Needs `sqlite3`.
 * @module
 */
import { DatabaseSync } from "node:sqlite";

async function trial(mode: "sync" | "async"): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: "walsync-probe-" });
  const path = `${dir}/app.db`;
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  const file = Deno.openSync(path, { read: true }); // kept open: fact 1 is not what is probed
  const buffer = new Uint8Array(4096);
  if (mode === "sync") file.readSync(buffer);
  else await file.read(buffer);
  const out = new Deno.Command("sqlite3", { args: [path, "INSERT INTO t VALUES (2);"] })
    .outputSync();
  if (out.code !== 0) throw new Error("sqlite3 failed");
  let kept: boolean;
  try {
    Deno.statSync(`${path}-wal`);
    kept = true;
  } catch {
    kept = false;
  }
  db.close();
  file.close();
  Deno.removeSync(dir, { recursive: true });
  return `${mode} read: WAL ${kept ? "kept" : "deleted"}`;
}

console.log(await trial("sync"));
console.log(await trial("async"));
