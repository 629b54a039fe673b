/**
 * The wizard's event handlers: opening the bucket, choosing a database, point and output,
 * restoring, going back, quitting and Ctrl-C. They run the effects through the injected
 * services and dispatch the results to the reducer in `state.ts`.
 * @module
 */
import { resolve } from "node:path";
import { type Dispatch, useCallback, useMemo, useRef } from "react";
import { parseBucket } from "../src/storage/bucket.ts";
import { WalsyncError } from "../src/support/errors.ts";
import type { ListedDatabase } from "../src/ops/list.ts";
import type { ActionContext } from "./action_context.ts";
import { describeFailure } from "./failure.ts";
import { defaultOutputPath, expandHome } from "./output_path.ts";
import { runRestore } from "./restore_run.ts";
import type { WizardServices } from "./services.ts";
import {
  interruptedExitCode,
  type PointChoice,
  quitCode,
  type WizardAction,
  type WizardState,
} from "./state.ts";

/** What the screens (and the keys of the wizard itself) can ask for. */
export interface WizardActions {
  /** Checks, opens and lists the bucket typed or given. */
  openBucket(text: string): Promise<void>;
  /** Reads the restore points of a database. */
  chooseDatabase(database: ListedDatabase): Promise<void>;
  /** Takes the point to restore and moves on to the output path. */
  choosePoint(choice: PointChoice): void;
  /** Checks the output path typed; asks before replacing existing files. */
  submitOutput(text: string): Promise<void>;
  /** Runs the restore chosen. */
  startRestore(): Promise<void>;
  /** Esc: abandons a wait, or goes back a screen. */
  back(): void;
  /** Ends the wizard with this exit code and last message. */
  quit(code: number, message: string | null): void;
  /** Ctrl-C or a signal: cancels a restore (stops it when asked twice), or quits. */
  interrupt(): void;
  /** Whether the latest state is waiting for something (Esc then abandons the wait). */
  waiting(): boolean;
}

/** Props of the wizard that the handlers use. */
export interface WizardActionOptions {
  /** Directory relative output paths start from. */
  cwd: string;
  /** Home directory, for `~/` in the output path. */
  home?: string;
  /** Milliseconds between progress redraws. */
  progressInterval?: number;
}

/** The last words when the wizard ends before anything was restored. */
export const nothingWritten = "Nothing was restored and no file was written.";

async function openAndList(ctx: ActionContext, text: string): Promise<void> {
  const { services, dispatch, ticket } = ctx;
  const value = text.trim();
  try {
    parseBucket(value);
  } catch (err) {
    dispatch({ type: "bucketFailed", failure: describeFailure(err) });
    return;
  }
  const mine = ++ticket.current;
  dispatch({ type: "busy", message: `Opening ${value}` });
  try {
    const storage = await services.openStorage(value);
    if (mine !== ticket.current) return storage.close();
    dispatch({ type: "busy", message: `Listing the databases in ${storage.location}` });
    const databases = await services.listDatabases(storage).catch((err) => {
      storage.close();
      throw err;
    });
    if (mine !== ticket.current) return storage.close();
    if (databases.length === 0) {
      storage.close();
      throw new WalsyncError(
        "failure",
        `no backups found in ${storage.location}; check the bucket name and prefix`,
      );
    }
    ctx.latest.current.storage?.close();
    dispatch({ type: "bucketOpened", storage, databases });
  } catch (err) {
    if (mine === ticket.current) {
      dispatch({ type: "bucketFailed", failure: describeFailure(err) });
    }
  }
}

async function readPoints(ctx: ActionContext, database: ListedDatabase): Promise<void> {
  const { services, dispatch, ticket } = ctx;
  const storage = ctx.latest.current.storage;
  if (!storage) return;
  if (!database.latestSnapshot) {
    dispatch({
      type: "databaseFailed",
      message: `${database.name} has no snapshot yet, so there is nothing to restore it from`,
    });
    return;
  }
  const mine = ++ticket.current;
  dispatch({ type: "busy", message: `Reading the restore points of ${database.name}` });
  try {
    const points = await services.listRestorePoints(storage, database.name);
    if (mine === ticket.current) dispatch({ type: "databaseChosen", database, points });
  } catch (err) {
    if (mine === ticket.current) {
      dispatch({ type: "databaseFailed", message: describeFailure(err).message });
    }
  }
}

async function probeOutput(ctx: ActionContext, text: string, home?: string): Promise<void> {
  const { services, dispatch, ticket } = ctx;
  const path = expandHome(text, home);
  if (path === "") {
    dispatch({ type: "outputFailed", message: "type the path of the file to write" });
    return;
  }
  const mine = ++ticket.current;
  dispatch({ type: "busy", message: `Checking ${path}` });
  try {
    const existing = await services.probeOutput(path);
    if (mine !== ticket.current) return;
    if (existing.length === 0) dispatch({ type: "outputAccepted", path, force: false });
    else dispatch({ type: "outputExists", path, existing });
  } catch (err) {
    if (mine === ticket.current) {
      dispatch({ type: "outputFailed", message: describeFailure(err).message });
    }
  }
}

function interruptWizard(
  ctx: ActionContext,
  cwd: string,
  quit: WizardActions["quit"],
): void {
  const s = ctx.latest.current;
  if (s.exit) return;
  if (s.step === "restore" && !s.cancelling) {
    // Stop the restore and wait for it to clean up before ending.
    ctx.cancelRequested.current = true;
    ctx.dispatch({ type: "cancelRequested" });
    return;
  }
  if (s.step === "restore") {
    // Asked twice: a stalled download may not notice the cancel for a long time, so stop
    // now and remove the temporary file here instead of in the restore.
    ctx.ticket.current++;
    const where = resolve(cwd, s.output!);
    ctx.services.sweep(where).catch(() => []).then(() =>
      ctx.dispatch({
        type: "quit",
        code: interruptedExitCode,
        message: `Restore stopped. The temporary file was removed; ${where} was not ${
          s.force ? "touched" : "created"
        }.`,
      })
    );
    return;
  }
  const code = quitCode(s);
  quit(code, s.step === "result" || s.step === "failed" ? null : `Quit. ${nothingWritten}`);
}

/**
 * The wizard's handlers over its reducer. Each handler reads the state of the latest render,
 * so it can run from a key or a promise at any time; an answer that arrives after the wait was
 * abandoned (Esc, quit) is dropped.
 * @example
 * ```ts
 * const [state, dispatch] = useReducer(wizardReducer, undefined, initialState);
 * const actions = useWizardActions(state, dispatch, services, { cwd: Deno.cwd() });
 * ```
 */
export function useWizardActions(
  state: WizardState,
  dispatch: Dispatch<WizardAction>,
  services: WizardServices,
  options: WizardActionOptions,
): WizardActions {
  const { cwd, home, progressInterval } = options;
  const latest = useRef(state);
  latest.current = state;
  const ticket = useRef(0);
  const cancelRequested = useRef(false);
  const ctx = useMemo<ActionContext>(
    () => ({ services, dispatch, latest, ticket, cancelRequested }),
    [services, dispatch],
  );

  const openBucket = useCallback((text: string) => openAndList(ctx, text), [ctx]);
  const chooseDatabase = useCallback((db: ListedDatabase) => readPoints(ctx, db), [ctx]);
  const choosePoint = useCallback((choice: PointChoice) => {
    const db = latest.current.database;
    if (!db) return;
    dispatch({
      type: "pointChosen",
      choice,
      defaultOutput: defaultOutputPath(db.name, services.now()),
    });
  }, [services, dispatch]);
  const submitOutput = useCallback((text: string) => probeOutput(ctx, text, home), [ctx, home]);
  const startRestore = useCallback(
    () => runRestore(ctx, { cwd, progressInterval }),
    [ctx, cwd, progressInterval],
  );
  const back = useCallback(() => {
    ticket.current++;
    dispatch({ type: "back" });
  }, [dispatch]);
  const quit = useCallback((code: number, message: string | null) => {
    ticket.current++;
    dispatch({ type: "quit", code, message });
  }, [dispatch]);
  const interrupt = useCallback(() => interruptWizard(ctx, cwd, quit), [ctx, cwd, quit]);
  const waiting = useCallback(() => Boolean(latest.current.busy), []);

  return {
    openBucket,
    chooseDatabase,
    choosePoint,
    submitOutput,
    startRestore,
    back,
    quit,
    interrupt,
    waiting,
  };
}
