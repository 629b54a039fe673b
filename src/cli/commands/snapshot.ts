/**
 * `walsync snapshot <db>`: uploads a consistent full snapshot of a live database, which
 * starts a new generation.
 * @module
 */
import type { Command } from "commander";
import { formatBytes } from "../../support/progress.ts";
import { byteProgress, out, printOutcome } from "../output.ts";
import { addBucketOptions, type BucketOptions, dbName, nameArg, storageFrom } from "../options.ts";

/** Flags of `walsync snapshot`. */
interface SnapshotFlags extends BucketOptions {
  name?: string;
  takeover?: boolean;
}

/** Registers `snapshot` on `program`. */
export function registerSnapshot(program: Command): void {
  addBucketOptions(
    program.command("snapshot")
      .argument("<db>", "path of the SQLite database to back up")
      .description("upload a consistent full snapshot of a live database (starts a new generation)")
      .option("--name <name>", "store it under this name instead of the file name")
      .option("--takeover", "take the history's lease even when a running watch holds it")
      .addHelpText(
        "after",
        `
Examples:
  walsync snapshot /var/lib/app/app.db --bucket s3://backups/app
  walsync snapshot app.db -b file:///srv/backups --json`,
      ),
  ).action(snapshot);
}

async function snapshot(dbPath: string, options: SnapshotFlags): Promise<void> {
  const { takeSnapshot } = await import("../../ops/snapshot.ts");
  const storage = await storageFrom(options);
  const bar = byteProgress("Uploading snapshot", options.json);
  try {
    const result = await takeSnapshot(storage, dbPath, {
      name: options.name !== undefined ? nameArg(options.name) : dbName(dbPath),
      onBytes: bar.onBytes,
      takeover: options.takeover,
    });
    bar.done();
    printOutcome(
      options.json,
      { ok: true, command: "snapshot", bucket: storage.location, ...result },
      () => {
        out(
          `✓ Snapshot of ${result.db} uploaded: ${formatBytes(result.size)}, SHA256 ${
            result.sha256.slice(0, 12)
          }…`,
        );
        out(`  ${storage.location}/${result.key}`);
      },
    );
  } finally {
    bar.done();
    storage.close();
  }
}
