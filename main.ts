/**
 * `walsync`: continuous, checksummed backups of SQLite databases.
 * @module
 */
import { runCli } from "./src/cli.ts";
import { trimMallocEvery, tuneMalloc } from "./src/memory.ts";

if (import.meta.main) {
  tuneMalloc();
  // Every 10 s, and every second for the first 30 s (start-up snapshots every database).
  trimMallocEvery(10_000);
  Deno.exit(await runCli(Deno.args));
}
