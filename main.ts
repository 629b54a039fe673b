/**
 * `walsync`: continuous, checksummed backups of SQLite databases.
 * @module
 */
import { runCli } from "./src/cli.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
