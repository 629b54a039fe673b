/**
 * Probe for docs/sqlite-facts.md fact 3: how long `node:sqlite`'s `backup()` takes to copy a
 * database in 1000-page slices and in one step (`rate: -1`), and the process's peak RSS.
 *
 * Run: deno run -A scripts/probes/backup_speed.ts <database>
 * Compare with `cp` and `sqlite3 <database> "VACUUM INTO 'copy.db'"` timed by hand.
 * @module
 */
import { backup, DatabaseSync } from "node:sqlite";

const source = Deno.args[0];
if (!source) throw new Error("usage: backup_speed.ts <database>");
const db = new DatabaseSync(source, { readOnly: true });
const copy = Deno.makeTempFileSync({ suffix: ".db" });
for (const rate of [1000, -1]) {
  Deno.removeSync(copy);
  const started = performance.now();
  const pages = await backup(db, copy, { rate });
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  console.log(`rate ${rate}: ${pages} pages in ${seconds} s`);
}
const status = Deno.readTextFileSync("/proc/self/status");
console.log(status.split("\n").find((line) => line.startsWith("VmHWM")) ?? "");
db.close();
Deno.removeSync(copy);
