/**
 * The interactive restore wizard (`walsync` or `walsync restore` on a terminal with no
 * database named): bucket → database → point → output → summary → restore → result.
 *
 * Accepting every default restores the latest backup of the chosen database into a new file;
 * nothing existing is replaced without a second, explicit confirmation.
 * @module
 */
import process from "node:process";
import { render } from "ink";
import { ExitCode } from "../src/support/errors.ts";
import { redact } from "../src/support/redact.ts";
import { App } from "./app.tsx";
import { realServices } from "./services.ts";
import { interruptedExitCode } from "./state.ts";
import { ThemeContext, themeFromEnv } from "./theme.tsx";

/** Where the wizard starts: values given on the command line or in the environment. */
export interface WizardOptions {
  /** `--bucket` value, if given. */
  bucket?: string;
  /** `--endpoint` value, if given. */
  endpoint?: string;
  /** `--region` value, if given. */
  region?: string;
}

// Signals that end a session without a key press: a closed SSH connection (HUP), `kill`
// (TERM), and Ctrl-C arriving as a signal before the terminal is in raw mode (INT).
const interruptSignals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function subscribeSignals(handler: () => void): () => void {
  // Through node:process, not Deno.addSignalListener: ink's signal-exit re-raises a signal
  // when it sees no other listener there, which would kill the process mid-restore and leave
  // the temporary file behind.
  for (const signal of interruptSignals) process.on(signal, handler);
  return () => {
    for (const signal of interruptSignals) process.off(signal, handler);
  };
}

/**
 * Runs the wizard on the terminal and returns the process exit code: 0 restored, 130 quit or
 * Ctrl-C, 5 checksum failure, 3 storage error, 1 other failure (2 when not on a terminal).
 * @example
 * ```ts
 * const code = await runWizard({ bucket: "s3://backups/prod" }); // asks for the rest
 * Deno.exit(code);
 * ```
 */
export async function runWizard(options: WizardOptions): Promise<number> {
  if (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal()) {
    // ink needs raw mode; without a terminal it would throw, or wait for keys nobody sends.
    console.error(
      "walsync: the restore wizard needs a terminal; give a database name and -o instead",
    );
    return ExitCode.usage;
  }
  let code: number = interruptedExitCode;
  const instance = render(
    <ThemeContext.Provider value={themeFromEnv(Deno.env)}>
      <App
        services={realServices({ endpoint: options.endpoint, region: options.region })}
        bucket={options.bucket}
        endpoint={options.endpoint}
        region={options.region}
        cwd={Deno.cwd()}
        home={Deno.env.get("HOME")}
        onExit={(exitCode) => (code = exitCode)}
        subscribeInterrupt={subscribeSignals}
      />
    </ThemeContext.Provider>,
    // Ctrl-C is the App's: during a restore it must cancel and clean up before exiting.
    // maxFps caps redraws for slow SSH links.
    { exitOnCtrlC: false, maxFps: 10 },
  );
  try {
    await instance.waitUntilExit();
  } catch (err) {
    console.error(
      redact(`walsync: the wizard stopped: ${err instanceof Error ? err.message : String(err)}`),
    );
    return code === interruptedExitCode ? ExitCode.failure : code;
  }
  return code;
}
