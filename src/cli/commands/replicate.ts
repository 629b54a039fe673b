/**
 * `walsync replicate <db>`: keeps a local read replica up to date by applying new verified
 * segments as they arrive, until SIGTERM or SIGINT (or once with `--once`).
 * @module
 */
import type { Command } from "commander";
import { stderrLogger } from "../../support/log.ts";
import {
  addBucketOptions,
  type BucketOptions,
  nameArg,
  parseDuration,
  storageFrom,
} from "../options.ts";

/** Flags of `walsync replicate`. */
interface ReplicateFlags extends BucketOptions {
  output: string;
  interval: string;
  once?: boolean;
  force?: boolean;
  jsonLogs?: boolean;
}

/** Registers `replicate` on `program`. */
export function registerReplicate(program: Command): void {
  addBucketOptions(
    program.command("replicate")
      .argument("<db>", "name of the backed-up database")
      .description(
        "keep a local read replica up to date by applying new verified segments as they arrive",
      )
      .requiredOption("-o, --output <path>", "the replica file (readable with sqlite3 at any time)")
      .option("--interval <duration>", "how often the bucket is polled", "1s")
      .option("--once", "update once and exit")
      .option(
        "--force",
        "replace an existing output file that is not a replica walsync made (by default refused)",
      )
      .option("--json-logs", "log one JSON object per line on stderr")
      .option("--takeover", "take each history's lease even when another process holds it")
      .addHelpText(
        "after",
        `
Every segment is checked (digest, chain, WAL checksums) before it is applied to a private shadow
copy; the replica is then updated through SQLite, so readers always see a whole commit.
Examples:
  walsync replicate app.db --bucket s3://backups/app -o /srv/replica/app.db
  walsync replicate app.db -b file:///srv/backups -o replica.db --once`,
      ),
  ).action(replicateCommand);
}

async function replicateCommand(db: string, options: ReplicateFlags): Promise<void> {
  const intervalMs = parseDuration("--interval", options.interval);
  const { replicate } = await import("../../ops/replicate.ts");
  const storage = await storageFrom(options);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    await replicate(storage, nameArg(db), options.output, {
      intervalMs,
      signal: controller.signal,
      logger: stderrLogger(options.jsonLogs ?? false),
      once: options.once,
      force: options.force,
    });
  } finally {
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
    storage.close();
  }
}
