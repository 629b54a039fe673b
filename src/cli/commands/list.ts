/**
 * `walsync list [db]`: the backed-up databases of a bucket (name, latest snapshot, size), or
 * with `--generations` every restorable point of one database.
 * @module
 */
import type { Command } from "commander";
import { formatBytes } from "../../support/progress.ts";
import type { Storage } from "../../storage/storage.ts";
import { out, printOutcome } from "../output.ts";
import { addBucketOptions, type BucketOptions, nameArg, storageFrom } from "../options.ts";

/** Flags of `walsync list`. */
interface ListFlags extends BucketOptions {
  checksums?: boolean;
  generations?: boolean;
}

/** Registers `list` on `program`. */
export function registerList(program: Command): void {
  addBucketOptions(
    program.command("list")
      .argument("[db]", "show the restorable points of one database")
      .description("list backed-up databases: name, latest snapshot time, size")
      .option("--checksums", "show the SHA256 digest of each snapshot")
      .option("--generations", "with a database name: show every restorable point")
      .addHelpText(
        "after",
        `
Examples:
  walsync list --bucket s3://backups/app --checksums
  walsync list app.db --bucket file:///srv/backups --generations`,
      ),
  ).action(async (db: string | undefined, options: ListFlags) => {
    const storage = await storageFrom(options);
    try {
      if (db !== undefined && options.generations) await listPoints(storage, db, options);
      else await listBackups(storage, db, options);
    } finally {
      storage.close();
    }
  });
}

/** Every restorable point of `db`, one line each. */
async function listPoints(storage: Storage, db: string, options: ListFlags): Promise<void> {
  const { listRestorePoints } = await import("../../ops/list.ts");
  const points = await listRestorePoints(storage, nameArg(db), { checksums: options.checksums });
  const document = {
    ok: true,
    command: "list",
    bucket: storage.location,
    database: nameArg(db),
    points,
  };
  printOutcome(options.json, document, () => {
    if (points.length === 0) {
      out(`no backup of ${nameArg(db)} in ${storage.location}`);
      return;
    }
    for (const p of points) {
      const txids = p.kind === "snapshot"
        ? `txid ${p.txidLast}`
        : `txids ${p.txidFirst}-${p.txidLast}`;
      out(
        `${p.generation}  ${p.kind.padEnd(8)}  ${txids.padEnd(16)}  ${(p.time ?? "").padEnd(24)}  ${
          formatBytes(p.size).padStart(10)
        }${p.sha256 ? "  " + p.sha256 : ""}`,
      );
    }
  });
}

/** The backed-up databases (or just `db`) as a table. */
async function listBackups(
  storage: Storage,
  db: string | undefined,
  options: ListFlags,
): Promise<void> {
  const { listDatabases } = await import("../../ops/list.ts");
  const databases = await listDatabases(storage, {
    checksums: options.checksums,
    db: db && nameArg(db),
  });
  const document = { ok: true, command: "list", bucket: storage.location, databases };
  printOutcome(options.json, document, () => {
    if (databases.length === 0) {
      out(`no backups in ${storage.location}`);
      return;
    }
    const header = ["NAME", "LATEST SNAPSHOT", "SIZE", "TXID", "GENERATIONS"];
    if (options.checksums) header.push("SHA256");
    const rows = databases.map((d) => {
      const row = [
        d.name,
        d.latestSnapshot?.created ?? "-",
        d.latestSnapshot ? formatBytes(d.latestSnapshot.size) : "-",
        String(d.latestTxid),
        String(d.generations),
      ];
      if (options.checksums) row.push(d.latestSnapshot?.sha256 ?? "-");
      return row;
    });
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const row of [header, ...rows]) {
      out(row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
    }
  });
}
