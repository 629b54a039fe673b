/**
 * `walsync`: continuous, checksummed backups of SQLite databases.
 * @module
 */
import { runCli } from "./src/cli.ts";
import { trimMallocEvery, tuneMalloc } from "./src/memory.ts";

if (import.meta.main) {
  tuneMalloc();
  // Free heap pages go back to the system every 10 s (see src/memory.ts).
  trimMallocEvery(10_000);
  Deno.exit(await runCli(Deno.args));
}
