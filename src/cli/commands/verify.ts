/**
 * `walsync verify <db>`: checks every object of a database's backup (digest, size, header,
 * chain) without restoring, in one bucket or in every replica a config file lists; `--deep`
 * adds a restore drill.
 * @module
 */
import type { Command } from "commander";
import { openBucket } from "../../storage/bucket.ts";
import { ExitCode, usageError } from "../../support/errors.ts";
import type { SigningKey } from "../../history/sign.ts";
import { formatBytes } from "../../support/progress.ts";
import type { Storage } from "../../storage/storage.ts";
import type { VerifyReport } from "../../ops/verify.ts";
import { byteProgress, historyLine, out, printJson } from "../output.ts";
import {
  addBucketOptions,
  type BucketOptions,
  configEntry,
  nameArg,
  type SetExit,
  storageFrom,
} from "../options.ts";

/** Flags of `walsync verify`. */
interface VerifyFlags extends BucketOptions {
  deep?: boolean;
  config?: string;
}

/** One replica's verify: its JSON document (without `command`) and whether it passed. */
interface VerifyOutcome {
  ok: boolean;
  document: Record<string, unknown>;
}

/** Registers `verify` on `program`. */
export function registerVerify(program: Command, setExit: SetExit): void {
  addBucketOptions(
    program.command("verify")
      .argument("<db>", "name of the backed-up database")
      .description(
        "check every object of a database's backup (digest, size, header, chain) without restoring",
      )
      .option(
        "--deep",
        "also run a restore drill: apply the latest state in a temporary directory and run integrity_check",
      )
      .option(
        "-c, --config <file>",
        "check every replica of the database in a walsync.yml, with its signing-key",
      )
      .addHelpText(
        "after",
        `
Exit code 0 when every object is intact, 5 when any is not (each is named).
Examples:
  walsync verify app.db --bucket s3://backups/app
  walsync verify app.db -b file:///srv/backups --json | jq .failures
  walsync verify app.db --config /etc/walsync.yml`,
      ),
  ).action(async (dbArg: string, options: VerifyFlags) => {
    const name = nameArg(dbArg);
    const ok = options.config !== undefined
      ? await verifyReplicas(options.config, name, options)
      : await verifyBucket(name, options);
    if (!ok) setExit(ExitCode.integrity);
  });
}

/** Verifies `name` in the bucket of `--bucket`; whether it passed. */
async function verifyBucket(name: string, options: VerifyFlags): Promise<boolean> {
  const storage = await storageFrom(options);
  try {
    const result = await verifyOne(storage, name, options);
    if (options.json) printJson({ ok: result.ok, command: "verify", ...result.document });
    return result.ok;
  } finally {
    storage.close();
  }
}

/** Verifies `name` in every replica the config `file` lists; whether all passed. */
async function verifyReplicas(file: string, name: string, options: VerifyFlags): Promise<boolean> {
  if (options.bucket !== undefined) throw usageError("give --bucket or --config, not both");
  const { config, entry } = await configEntry(file, name);
  const { signingKeyFrom } = await import("../../history/sign.ts");
  const signing = signingKeyFrom(config.signingKey);
  const results: VerifyOutcome[] = [];
  for (const replica of entry.replicas) {
    const storage = await openBucket(replica.bucket, replica.s3);
    try {
      await storage.check();
      results.push(await verifyOne(storage, name, options, signing));
    } finally {
      storage.close();
    }
  }
  const ok = results.every((r) => r.ok);
  if (options.json) {
    printJson({ ok, command: "verify", replicas: results.map((r) => r.document) });
  }
  return ok;
}

/** Verifies `name` in one storage, printing the text lines unless `--json`. */
async function verifyOne(
  storage: Storage,
  name: string,
  options: VerifyFlags,
  signing?: SigningKey,
): Promise<VerifyOutcome> {
  const { verifyDatabase } = await import("../../ops/verify.ts");
  const { runDrill } = await import("../../ops/drill.ts");
  const bar = byteProgress("Verifying", options.json);
  try {
    const report = await verifyDatabase(storage, name, { onBytes: bar.onBytes, signing });
    bar.done();
    const drill = options.deep ? await runDrill(storage, name, signing) : undefined;
    if (drill && !drill.ok) {
      report.failures.push({ key: `${name} (restore drill)`, problem: drill.error ?? "failed" });
    } else if (drill && !options.json) {
      out(
        `✓ Restore drill: txid ${drill.txid} applied from ${drill.objects} objects, integrity_check ok (${drill.durationMs} ms)`,
      );
    }
    const ok = report.failures.length === 0;
    if (!options.json) printVerified(report, storage.location);
    return {
      ok,
      document: { ok, bucket: storage.location, ...report, ...(drill ? { drill } : {}) },
    };
  } finally {
    bar.done();
  }
}

/** The text lines of one verified storage: a summary, or each failure and a count. */
function printVerified(report: VerifyReport, location: string): void {
  if (report.failures.length === 0) {
    out(
      `✓ All checksums valid: ${report.objects} objects, ${
        formatBytes(report.bytes)
      } in ${report.generations} generation(s) of ${report.db} in ${location}`,
    );
  } else {
    for (const f of report.failures) {
      let line = `✗ ${f.key}: ${f.problem}`;
      if (f.expected !== undefined) line += `, expected ${f.expected}`;
      if (f.actual !== undefined) line += `, actual ${f.actual}`;
      out(line);
    }
    out(
      `${report.failures.length} problem(s) in ${report.objects} objects of ${report.db} in ${location}`,
    );
  }
  out(historyLine(report));
}
