/**
 * The `walsync` command line: parses arguments with commander, runs one command, prints text
 * or one JSON document, and returns the exit code. Each command lives in `commands/<name>.ts`
 * and imports its implementation when it runs (`await import(…)`), so a long-running `watch`
 * does not keep restore, verify, the YAML parser and the rest loaded (about 8 MiB of resident
 * memory; docs/benchmarks-watch.md).
 * @module
 */
import { Command, CommanderError } from "commander";
import { ExitCode, WalsyncError } from "../support/errors.ts";
import { err, printJson, writeStderr, writeStdout } from "./output.ts";
import { isInteractive, openWizard, type SetExit } from "./options.ts";
import { registerSnapshot } from "./commands/snapshot.ts";
import { registerRestore } from "./commands/restore.ts";
import { registerVerify } from "./commands/verify.ts";
import { registerList } from "./commands/list.ts";
import { registerWatch } from "./commands/watch.ts";
import { registerReplicate } from "./commands/replicate.ts";
import { registerExplain } from "./commands/explain.ts";
import { registerStatus } from "./commands/status.ts";

/** Version printed by `walsync --version`. */
export const version = "0.1.0";

/** Builds the commander program with every command; `setExit` sets the run's exit code. */
function buildProgram(setExit: SetExit): Command {
  const program = new Command("walsync")
    .description(
      "Continuous, checksummed backups of SQLite databases to S3-compatible storage or a local directory.\n" +
        "Every object is hashed with SHA256 on the way up and checked on the way down.",
    )
    .version(version, "-V, --version", "print the version")
    .exitOverride()
    .configureOutput({
      writeOut: writeStdout,
      writeErr: writeStderr,
      outputError: (text, write) =>
        write(`walsync: ${text.replace(/^error: /, "").trimEnd()} (see --help)\n`),
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      "after",
      `
Exit codes: 0 ok, 1 other failure, 2 usage error, 3 storage unreachable or access denied,
            4 database error, 5 checksum or integrity failure.

Examples:
  walsync snapshot app.db --bucket file://./backups
  walsync restore app.db --bucket file://./backups -o restored.db
  walsync verify app.db --bucket s3://my-bucket/prod --endpoint http://127.0.0.1:9000
  walsync list --bucket s3://my-bucket/prod --checksums --json`,
    );
  registerSnapshot(program);
  registerRestore(program, setExit);
  registerVerify(program, setExit);
  registerList(program);
  registerWatch(program, setExit);
  registerReplicate(program);
  registerExplain(program);
  registerStatus(program, setExit);
  return program;
}

/** Prints an error as one line (or a JSON document) and returns its exit code. */
export function reportError(error: unknown, json: boolean): number {
  let kind = "failure";
  let code: number = ExitCode.failure;
  let message: string;
  let detail: Record<string, unknown> = {};
  if (error instanceof WalsyncError) {
    kind = error.kind;
    code = error.exitCode;
    message = error.message;
    if (error.detail) detail = { ...error.detail };
  } else {
    message = `internal error: ${error instanceof Error ? error.message : String(error)}`;
    if (Deno.env.get("WALSYNC_DEBUG") && error instanceof Error) err(error.stack ?? "");
  }
  if (json) printJson({ ok: false, error: { kind, code, message, ...detail } });
  err(`walsync: ${message}`);
  return code;
}

/** The exit code of a commander error: 0 for help and version, 2 (usage) for the rest. */
function commanderExit(error: CommanderError, json: boolean): number {
  if (
    error.code === "commander.helpDisplayed" || error.code === "commander.version" ||
    error.code === "commander.help"
  ) {
    return ExitCode.ok;
  }
  if (json) {
    printJson({
      ok: false,
      error: {
        kind: "usage",
        code: ExitCode.usage,
        message: error.message.replace(/^error: /, ""),
      },
    });
  }
  return ExitCode.usage;
}

/**
 * Runs the command line and returns the process exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await runCli(["list", "--bucket", "file:///srv/backups", "--json"]));
 * ```
 */
export async function runCli(args: string[]): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = buildProgram((code) => (exitCode = code));
  const json = args.includes("--json");
  if (args.length === 0) {
    if (isInteractive()) return await openWizard({});
    buildProgram(() => {}).outputHelp({ error: true });
    return ExitCode.usage;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return commanderExit(error, json);
    return reportError(error, json);
  }
}
