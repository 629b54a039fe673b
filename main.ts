/**
 * `walsync`: continuous, checksummed backups of SQLite databases.
 * @module
 */
import { runCli } from "./src/cli.ts";
import { tuneMalloc } from "./src/memory.ts";

if (import.meta.main) {
  tuneMalloc();
  Deno.exit(await runCli(Deno.args));
}
