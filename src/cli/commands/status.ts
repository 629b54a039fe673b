/**
 * `walsync status [db]`: per database the last snapshot, the last shipped position, the lag
 * behind the live database, and whether the chain is continuous.
 * @module
 */
import type { Command } from "commander";
import { ExitCode } from "../../support/errors.ts";
import type { DatabaseStatus } from "../../ops/status.ts";
import { out, printOutcome } from "../output.ts";
import {
  addBucketOptions,
  type BucketOptions,
  dbName,
  localDatabaseArg,
  nameArg,
  type SetExit,
  storageFrom,
} from "../options.ts";

/** Flags of `walsync status`. */
interface StatusFlags extends BucketOptions {
  deep?: boolean;
  db?: string;
}

/** Registers `status` on `program`. */
export function registerStatus(program: Command, setExit: SetExit): void {
  addBucketOptions(
    program.command("status")
      .argument("[db]", "only this database")
      .description(
        "per database: last snapshot, last shipped position, lag, and whether the chain is continuous",
      )
      .option("--deep", "also download and verify every object (like verify)")
      .option(
        "--db <path>",
        "the live local database: lag is then the age of its oldest commit not in storage",
      )
      .addHelpText(
        "after",
        `
Lag needs the local database (--db): status compares what SQLite has committed there with where
the bucket's head says the history ends. It is exact when everything is shipped; otherwise it is a
lower bound (the age of the newest local change), shown as "at least" (--json: lagKnown).
Exit code 5 when a chain has a gap or (with --deep) an object fails its checks.
Examples:
  walsync status --bucket s3://backups/app
  walsync status --db /var/lib/app/app.db -b s3://backups/app --json
  walsync status app.db -b file:///srv/backups --deep --json`,
      ),
  ).action((db: string | undefined, options: StatusFlags) => status(db, options, setExit));
}

async function status(db: string | undefined, options: StatusFlags, setExit: SetExit) {
  const { bucketStatus } = await import("../../ops/status.ts");
  const name = db !== undefined
    ? nameArg(db)
    : options.db !== undefined
    ? dbName(options.db)
    : undefined;
  if (options.db !== undefined) await localDatabaseArg(options.db);
  const storage = await storageFrom(options);
  try {
    const report = await bucketStatus(storage, {
      db: name,
      deep: options.deep,
      localPath: options.db,
    });
    const ok = report.every((r) => r.chainOk);
    const document = { ok, command: "status", bucket: storage.location, databases: report };
    printOutcome(options.json, document, () => {
      if (report.length === 0) out(`no backups in ${storage.location}`);
      for (const r of report) printStatus(r);
    });
    if (!ok) setExit(ExitCode.integrity);
  } finally {
    storage.close();
  }
}

/** The lines of one database's status. */
function printStatus(r: DatabaseStatus): void {
  out(
    `${r.chainOk ? "✓" : "✗"} ${r.name}: txid ${r.latestTxid}, last update ${
      r.lastUpdate ?? "-"
    } (${
      r.lastUpdateAgeSeconds === null ? "-" : Math.round(r.lastUpdateAgeSeconds) + " s ago"
    }), last snapshot ${r.lastSnapshot ?? "-"}, ${r.generations} generation(s)`,
  );
  out(`    lag: ${lagText(r)}`);
  for (const p of r.problems) out(`    ${p}`);
}

/** The lag of one status line in words. */
function lagText(
  r: { lagSeconds: number | null; lagKnown: string; lagReason: string },
): string {
  if (r.lagSeconds === null) return `unknown: ${r.lagReason}`;
  const seconds = `${Math.round(r.lagSeconds * 10) / 10} s`;
  return `${r.lagKnown === "at-least" ? "at least " : ""}${seconds} (${r.lagReason})`;
}
