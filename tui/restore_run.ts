/**
 * The restore as the wizard runs it: progress redrawn from a timer, Ctrl-C honoured midway
 * and after the final check, the restored file's row counts read for the result screen.
 * @module
 */
import { resolve } from "node:path";
import type { Dispatch } from "react";
import { WalsyncError } from "../src/support/errors.ts";
import type { RestoreResult, RestoreTarget } from "../src/ops/restore.ts";
import type { ActionContext } from "./action_context.ts";
import { describeFailure } from "./failure.ts";
import type { WizardServices } from "./services.ts";
import { interruptedExitCode, type PointChoice, type WizardAction } from "./state.ts";
import type { TableReport } from "./table_report.ts";

/** Where the restore writes and how often it redraws. */
export interface RestoreRunOptions {
  /** Directory relative output paths start from. */
  cwd: string;
  /** Milliseconds between progress redraws (default 250). */
  progressInterval?: number;
}

/** The restore target a chosen point stands for (latest, one transaction, or a time). */
export function restoreTarget(choice: PointChoice): RestoreTarget {
  if (choice.kind === "point") return { txid: choice.point.txidLast };
  if (choice.kind === "timestamp") return { timestamp: new Date(choice.text) };
  return {};
}

/** Bytes seen so far, redrawn on a timer rather than per chunk. */
interface ProgressRedraws {
  /** Records the latest byte counts (cheap: called per chunk). */
  record(done: number, total: number): void;
  /** Stops the timer. */
  stop(): void;
}

function startProgressRedraws(
  dispatch: Dispatch<WizardAction>,
  interval: number,
): ProgressRedraws {
  let done = 0;
  let total = 0;
  let shown = -1;
  let shownAt = 0;
  // onBytes fires per chunk; the screen is redrawn from a timer instead, a few times a second,
  // and once a second during a stall so the rate and time left do not go stale.
  const timer = setInterval(() => {
    const now = performance.now();
    if (done === shown && now - shownAt < 1000) return;
    shown = done;
    shownAt = now;
    dispatch({ type: "progress", done, total, at: now });
  }, interval);
  return {
    record(d, t) {
      done = d;
      total = t;
    },
    stop: () => clearInterval(timer),
  };
}

/** Row counts of the restored file, or why they could not be read. */
async function inspectRestored(
  services: WizardServices,
  path: string,
): Promise<TableReport | string> {
  try {
    return await services.inspect(path);
  } catch (err) {
    return describeFailure(err).message;
  }
}

/**
 * Ends the wizard after a cancel that came during the restore's final check: the file is
 * complete, but the operator asked for nothing to happen. A file this run created is removed;
 * a replaced one cannot be brought back, so say so.
 */
async function quitAfterLateCancel(
  ctx: ActionContext,
  result: RestoreResult,
  force: boolean,
  cancelledMessage: string,
): Promise<void> {
  if (!force) {
    await ctx.services.discard(result.output);
    ctx.dispatch({ type: "quit", code: interruptedExitCode, message: cancelledMessage });
  } else {
    ctx.dispatch({
      type: "quit",
      code: interruptedExitCode,
      message:
        `Cancelled too late: the restore had finished, and ${result.output} was replaced with the verified backup.`,
    });
  }
}

/**
 * Restores what the latest state has chosen and dispatches progress, then the result, the
 * failure, or the quit a cancel asked for. Does nothing unless storage, database and output
 * are all chosen.
 * @example
 * ```ts
 * const startRestore = useCallback(() => runRestore(ctx, { cwd }), [ctx, cwd]);
 * ```
 */
export async function runRestore(ctx: ActionContext, options: RestoreRunOptions): Promise<void> {
  const { services, dispatch, ticket, cancelRequested } = ctx;
  const s = ctx.latest.current;
  if (!s.storage || !s.database || !s.output) return;
  const { storage, database, output, force } = s;
  const mine = ++ticket.current;
  cancelRequested.current = false;
  dispatch({ type: "restoreStarted", at: performance.now() });
  const progress = startProgressRedraws(dispatch, options.progressInterval ?? 250);
  const where = resolve(options.cwd, output);
  const cancelledMessage = `Restore cancelled. The temporary file was removed; ${where} was not ${
    force ? "touched" : "created"
  }.`;
  try {
    const result = await services.restore(storage, database.name, {
      output,
      force,
      target: restoreTarget(s.choice),
      onBytes: (d, t) => {
        // `cancelled()` is only polled between objects; throwing here also stops a large
        // object midway, and the restore's clean-up removes its temporary file either way.
        if (cancelRequested.current) throw new WalsyncError("failure", "restore cancelled");
        progress.record(d, t);
      },
      cancelled: () => cancelRequested.current,
    });
    progress.stop();
    dispatch({
      type: "progress",
      done: result.bytes,
      total: result.bytes,
      at: performance.now(),
    });
    if (cancelRequested.current) {
      await quitAfterLateCancel(ctx, result, force, cancelledMessage);
      return;
    }
    const tables = await inspectRestored(services, result.output);
    if (mine === ticket.current) dispatch({ type: "restored", result, tables });
  } catch (err) {
    progress.stop();
    if (cancelRequested.current) {
      dispatch({ type: "quit", code: interruptedExitCode, message: cancelledMessage });
    } else {
      dispatch({ type: "restoreFailed", failure: describeFailure(err) });
    }
  }
}
