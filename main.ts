/**
 * `walsync`: continuous, checksummed backups of SQLite databases.
 * @module
 */
import { runCli } from "./src/cli/mod.ts";
import { trimMallocEvery, tuneMalloc } from "./src/support/memory.ts";

if (import.meta.main) {
  tuneMalloc();
  // Free heap pages go back to the system every 10 s (see src/support/memory.ts).
  trimMallocEvery(10_000);
  Deno.exit(await runCli(Deno.args));
}
