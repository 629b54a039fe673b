/**
 * `walsync watch`: ships every commit of live databases continuously until SIGTERM or
 * SIGINT, configured by its arguments and flags or by a walsync.yml.
 * @module
 */
import type { Command } from "commander";
import { ExitCode } from "../../support/errors.ts";
import { type Logger, stderrLogger } from "../../support/log.ts";
import { addBucketOptions, type SetExit } from "../options.ts";
import { addSettingFlags, watchConfig, type WatchFlags } from "../watch_config.ts";

/** Registers `watch` on `program`. */
export function registerWatch(program: Command, setExit: SetExit): void {
  const watch = addSettingFlags(
    program.command("watch")
      .argument("[db...]", "one or more SQLite databases to back up continuously (or use --config)")
      .description("continuously ship every commit of live databases until SIGTERM or SIGINT")
      .option("-c, --config <file>", "read databases, replicas and settings from a walsync.yml"),
  );
  addBucketOptions(
    watch
      .option("--json-logs", "log one JSON object per line on stderr")
      .option("--takeover", "take each history's lease even when another process holds it")
      .addHelpText(
        "after",
        `
Runs in the foreground (for systemd, a container or a terminal); one log line per event on stderr.
On SIGTERM or SIGINT it ships what is pending and exits 0.
Examples:
  walsync watch /var/lib/app/app.db --bucket s3://backups/app
  walsync watch a.db b.db c.db -b file:///srv/backups --sync-interval 500ms --json-logs
  walsync watch --config /etc/walsync.yml`,
      ),
  ).action(async (paths: string[], options: WatchFlags, command: Command) => {
    const config = await watchConfig(
      paths,
      options,
      (key) => command.getOptionValueSource(key) === "cli",
    );
    const { runService } = await import("../../service/service.ts");
    const logger = stderrLogger(options.jsonLogs ?? false);
    await untilStopped(logger, async (signal) => {
      // Exit 1 when the last commits could not be shipped, so a service manager can tell.
      const service = { takeover: options.takeover };
      if (!(await runService(config, logger, signal, service))) setExit(ExitCode.failure);
    });
  });
}

/**
 * Runs `work` with a signal that SIGTERM or SIGINT aborts. Once stopping, pending uploads
 * get 10 s before the process exits 1: shipping them must not hold a service manager up.
 */
async function untilStopped(
  logger: Logger,
  work: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const controller = new AbortController();
  const stop = (signal: string) => () => {
    if (controller.signal.aborted) return;
    logger.log("INFO", "stopping: shipping what is pending", { signal });
    controller.abort();
    const timer = setTimeout(() => {
      logger.log("ERROR", "pending uploads did not finish within 10 s; exiting");
      Deno.exit(1);
    }, 10_000);
    Deno.unrefTimer(timer);
  };
  const onTerm = stop("SIGTERM");
  const onInt = stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  try {
    await work(controller.signal);
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
  }
}
