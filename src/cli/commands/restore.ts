/**
 * `walsync restore <db>`: downloads, verifies and writes a database, from one bucket or from
 * the newest intact replica a config file lists. Without a name on a terminal it opens the
 * wizard.
 * @module
 */
import { type Command, Option } from "commander";
import { openBucket } from "../../storage/bucket.ts";
import { usageError } from "../../support/errors.ts";
import { formatBytes } from "../../support/progress.ts";
import type { RestoreOptions, RestoreResult } from "../../ops/restore.ts";
import type { SkippedReplica } from "../../ops/replicas.ts";
import { byteProgress, err, historyLine, out, printOutcome } from "../output.ts";
import {
  addBucketOptions,
  type BucketOptions,
  configEntry,
  isInteractive,
  nameArg,
  openWizard,
  parseTarget,
  type SetExit,
  storageFrom,
} from "../options.ts";

/** Flags of `walsync restore`. */
interface RestoreFlags extends BucketOptions {
  output?: string;
  force?: boolean;
  txid?: string;
  timestamp?: string;
  pointInTime?: string;
  config?: string;
}

/** A restore's result and where it came from (`replica` only when a config chose among several). */
type SourcedResult = RestoreResult & { location: string; replica?: string };

/** Where a restore reads from: the one bucket of `--bucket`, or the replicas of `--config`. */
interface RestoreSource {
  /** Restores `name`; `onSkip` hears of each replica passed over. */
  restore(
    name: string,
    options: RestoreOptions,
    onSkip: (skipped: SkippedReplica) => void,
  ): Promise<SourcedResult>;
  /** Closes the storage it opened. */
  close(): void;
}

/** Registers `restore` on `program`. */
export function registerRestore(program: Command, setExit: SetExit): void {
  addBucketOptions(
    program.command("restore")
      .argument(
        "[db]",
        "name of the backed-up database (its file name, as `walsync list` shows); omit it on a terminal for the wizard",
      )
      .description(
        "download, verify and write a database; nothing is written unless every checksum matches",
      )
      .option("-o, --output <path>", "where to write the restored database (required)")
      .option(
        "--force",
        "replace the output file if it exists (not while another process has it open: stop the application first)",
      )
      .option(
        "-c, --config <file>",
        "take the replicas from a walsync.yml: the newest intact one is used",
      )
      .option("--txid <n>", "restore exactly the commits up to this transaction id")
      .option(
        "--timestamp <time>",
        "restore the state at this RFC 3339 time, e.g. 2026-11-24T10:00:00Z",
      )
      .addOption(new Option("--point-in-time <time>", "alias of --timestamp").hideHelp())
      .addHelpText(
        "after",
        `
Examples:
  walsync restore app.db --bucket s3://backups/app -o /tmp/app-restored.db
  walsync restore app.db -b file:///srv/backups -o app.db --force --timestamp 2026-11-24T10:00:00Z`,
      ),
  ).action((db: string | undefined, options: RestoreFlags) => restore(db, options, setExit));
}

async function restore(
  dbArg: string | undefined,
  options: RestoreFlags,
  setExit: SetExit,
): Promise<void> {
  if (dbArg === undefined) {
    if (isInteractive() && !options.json) {
      setExit(await openWizard(options));
      return;
    }
    throw usageError(
      "restore needs a database name, e.g. walsync restore app.db --bucket B -o out.db (run it on a terminal without one for the wizard)",
    );
  }
  if (options.output === undefined) {
    throw usageError("restore needs -o <path>: where to write the restored database");
  }
  const output = options.output;
  const target = parseTarget({
    txid: options.txid,
    timestamp: options.timestamp ?? options.pointInTime,
  });
  if (options.config !== undefined && options.bucket !== undefined) {
    throw usageError("give --bucket or --config, not both");
  }
  const name = nameArg(dbArg);
  const source = options.config !== undefined
    ? await replicaSource(options.config, name)
    : await bucketSource(options);
  const bar = byteProgress("Restoring", options.json);
  try {
    const result = await source.restore(
      name,
      { output, force: options.force, target, onBytes: bar.onBytes },
      (skipped) => {
        bar.done();
        err(`walsync: replica ${skipped.location} skipped: ${skipped.reason}`);
      },
    );
    bar.done();
    const { location, ...restored } = result;
    printOutcome(
      options.json,
      { ok: true, command: "restore", bucket: location, ...restored },
      () => printRestored(result),
    );
  } finally {
    bar.done();
    source.close();
  }
}

/** The bucket of `--bucket` (checked to be reachable). */
async function bucketSource(options: BucketOptions): Promise<RestoreSource> {
  const { restoreDatabase } = await import("../../ops/restore.ts");
  const storage = await storageFrom(options);
  return {
    restore: async (name, restoreOptions) => ({
      ...(await restoreDatabase(storage, name, restoreOptions)),
      location: storage.location,
    }),
    close: () => storage.close(),
  };
}

/** The replicas the config `file` lists for `name`, signed with its signing key. */
async function replicaSource(file: string, name: string): Promise<RestoreSource> {
  const { restoreFromReplicas } = await import("../../ops/replicas.ts");
  const { signingKeyFrom } = await import("../../history/sign.ts");
  const { config, entry } = await configEntry(file, name);
  const replicas = await Promise.all(entry.replicas.map((r) => openBucket(r.bucket, r.s3)));
  const signing = signingKeyFrom(config.signingKey);
  return {
    restore: async (name, restoreOptions, onSkip) => {
      const result = await restoreFromReplicas(
        replicas,
        name,
        { ...restoreOptions, signing },
        onSkip,
      );
      return { ...result, location: result.replica };
    },
    close: () => {
      for (const r of replicas) r.close();
    },
  };
}

/** The text a successful restore prints. */
function printRestored(result: SourcedResult): void {
  const from = result.replica ? ` from ${result.replica}` : "";
  out(
    `✓ Checksum verified: ${result.snapshot.sha256.slice(0, 12)}… (${
      1 + result.segments.length
    } objects, ${formatBytes(result.bytes)})${from}`,
  );
  out(`✓ integrity_check: ${result.integrityCheck}`);
  out(historyLine({
    format: result.format ?? 2,
    signed: result.signed ?? false,
    signatureChecked: result.signatureChecked ?? false,
  }));
  out(
    `Restored ${result.db} at txid ${result.txid} to ${result.output} (${
      formatBytes(result.size)
    })`,
  );
}
