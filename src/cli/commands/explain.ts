/**
 * `walsync explain --config <file>`: the effective settings of a config file per database,
 * defaults applied and secrets redacted.
 * @module
 */
import type { Command } from "commander";
import { databaseSettings, processSettings } from "../../support/settings.ts";
import { out, printOutcome } from "../output.ts";

/** Registers `explain` on `program`. */
export function registerExplain(program: Command): void {
  program.command("explain")
    .description("print the effective settings of a config file per database, secrets redacted")
    .requiredOption("-c, --config <file>", "the walsync.yml to explain")
    .option("--json", "print one JSON document instead of text")
    .addHelpText(
      "after",
      `
Every mistake in the file is reported with its line, e.g. walsync.yml:7: sse "AES" must be AES256 or aws:kms.
Example:
  walsync explain --config /etc/walsync.yml`,
    )
    .action(async (options: { config: string; json?: boolean }) => {
      const { explainConfig, loadConfig } = await import("../../service/config.ts");
      const explained = explainConfig(await loadConfig(options.config));
      printOutcome(
        options.json,
        { ok: true, command: "explain", ...explained },
        () => printExplained(explained),
      );
    });
}

/** The text form of `explainConfig`: a line for the file, a few for each database. */
function printExplained(explained: Record<string, unknown>): void {
  const processWords = processSettings.map((s) => s.explain(explained[s.key] as number));
  out(
    `config ${explained.file}: metrics ${explained.metricsAddr ?? "off"}, ${
      processWords.join(", ")
    }`,
  );
  for (const db of explained.databases as Record<string, unknown>[]) {
    out(`${db.name}  ${db.path}`);
    for (const line of [1, 2]) {
      const words = databaseSettings.filter((s) => s.explainLine === line)
        .map((s) => s.explain(db[s.key] as number));
      out(`  ${words.join(", ")}`);
    }
    for (const r of db.replicas as Record<string, unknown>[]) {
      out(
        `  replica ${r.bucket}${r.endpoint ? " at " + r.endpoint : ""}${
          r.region ? " region " + r.region : ""
        }; credentials ${
          typeof r.credentials === "string" ? r.credentials : "from the file [redacted]"
        }${r.sse ? "; sse " + r.sse : ""}${r.sseKmsKeyId ? " key " + r.sseKmsKeyId : ""}`,
      );
    }
  }
}
