/**
 * The wizard: one screen per step over the state machine in `state.ts`. This component runs
 * the effects (opening storage, listing, restoring) through injected services and dispatches
 * their results; the step components only show state and report keys.
 * @module
 */
import { Box, Text, useApp } from "ink";
import { resolve } from "node:path";
import { type ReactNode, useCallback, useEffect, useReducer, useRef } from "react";
import { parseBucket } from "../src/storage/bucket.ts";
import { WalsyncError } from "../src/support/errors.ts";
import type { ListedDatabase } from "../src/ops/list.ts";
import type { RestoreTarget } from "../src/ops/restore.ts";
import { BucketStep } from "./bucket_step.tsx";
import { scriptedCommand } from "./command_line.ts";
import { DatabaseStep } from "./database_step.tsx";
import { ErrorStep } from "./error_step.tsx";
import { describeFailure } from "./failure.ts";
import { defaultOutputPath, expandHome } from "./output_path.ts";
import { OutputStep } from "./output_step.tsx";
import { describeChoice, PointStep } from "./point_step.tsx";
import { RestoreStep } from "./restore_step.tsx";
import { ResultStep } from "./result_step.tsx";
import type { WizardServices } from "./services.ts";
import {
  initialState,
  interruptedExitCode,
  type PointChoice,
  quitCode,
  wizardReducer,
} from "./state.ts";
import { SummaryStep } from "./summary_step.tsx";
import type { TableReport } from "./table_report.ts";
import { useTheme } from "./theme.tsx";
import { KeyProvider, useDiscardKeysOnChange, useKeys } from "./keys.tsx";

/** Props of {@link App}. */
export interface AppProps {
  /** Storage, restore and file system access. */
  services: WizardServices;
  /** `--bucket` / `WALSYNC_BUCKET`: opened at once, skipping the prompt when it works. */
  bucket?: string;
  /** `--endpoint`, repeated in the scripted command. */
  endpoint?: string;
  /** `--region`, repeated in the scripted command. */
  region?: string;
  /** Directory relative output paths start from. */
  cwd: string;
  /** Home directory, for `~/` in the output path. */
  home?: string;
  /** Called once, with the exit code, when the wizard ends. */
  onExit: (code: number) => void;
  /** Subscribes to interrupts from outside the keyboard (signals); returns the unsubscribe. */
  subscribeInterrupt?: (handler: () => void) => () => void;
  /** Milliseconds between progress redraws (a few per second: slow SSH links). */
  progressInterval?: number;
}

function targetOf(choice: PointChoice): RestoreTarget {
  if (choice.kind === "point") return { txid: choice.point.txidLast };
  if (choice.kind === "timestamp") return { timestamp: new Date(choice.text) };
  return {};
}

const nothingWritten = "Nothing was restored and no file was written.";

/** The whole wizard, taking keys one at a time (see `keys.tsx`). */
export function App(props: AppProps): ReactNode {
  return (
    <KeyProvider>
      <Wizard {...props} />
    </KeyProvider>
  );
}

function Wizard(props: AppProps): ReactNode {
  const { services } = props;
  const theme = useTheme();
  const { exit } = useApp();
  const [state, dispatch] = useReducer(wizardReducer, props.bucket, initialState);
  // Handlers run from key events and promises; they read the latest state through this.
  const latest = useRef(state);
  latest.current = state;
  // Bumped whenever a wait is abandoned (Esc, quit), so a late answer is dropped.
  const ticket = useRef(0);
  const cancelRequested = useRef(false);

  const openBucket = useCallback(async (text: string) => {
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
      latest.current.storage?.close();
      dispatch({ type: "bucketOpened", storage, databases });
    } catch (err) {
      if (mine === ticket.current) {
        dispatch({ type: "bucketFailed", failure: describeFailure(err) });
      }
    }
  }, [services]);

  const chooseDatabase = useCallback(async (database: ListedDatabase) => {
    const storage = latest.current.storage;
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
  }, [services]);

  const choosePoint = useCallback((choice: PointChoice) => {
    const db = latest.current.database;
    if (!db) return;
    dispatch({
      type: "pointChosen",
      choice,
      defaultOutput: defaultOutputPath(db.name, services.now()),
    });
  }, [services]);

  const submitOutput = useCallback(async (text: string) => {
    const path = expandHome(text, props.home);
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
  }, [services, props.home]);

  const startRestore = useCallback(async () => {
    const s = latest.current;
    if (!s.storage || !s.database || !s.output) return;
    const { storage, database, output, force } = s;
    const mine = ++ticket.current;
    cancelRequested.current = false;
    dispatch({ type: "restoreStarted", at: performance.now() });
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
    }, props.progressInterval ?? 250);
    const where = resolve(props.cwd, output);
    const cancelledMessage = `Restore cancelled. The temporary file was removed; ${where} was not ${
      force ? "touched" : "created"
    }.`;
    try {
      const result = await services.restore(storage, database.name, {
        output,
        force,
        target: targetOf(s.choice),
        onBytes: (d, t) => {
          // `cancelled()` is only polled between objects; throwing here also stops a large
          // object midway, and the restore's clean-up removes its temporary file either way.
          if (cancelRequested.current) throw new WalsyncError("failure", "restore cancelled");
          done = d;
          total = t;
        },
        cancelled: () => cancelRequested.current,
      });
      clearInterval(timer);
      dispatch({
        type: "progress",
        done: result.bytes,
        total: result.bytes,
        at: performance.now(),
      });
      if (cancelRequested.current) {
        // The cancel came during the final check: the file is complete, but the operator asked
        // for nothing to happen. A file this run created is removed; a replaced one cannot be
        // brought back, so say so.
        if (!force) {
          await services.discard(result.output);
          dispatch({ type: "quit", code: interruptedExitCode, message: cancelledMessage });
        } else {
          dispatch({
            type: "quit",
            code: interruptedExitCode,
            message:
              `Cancelled too late: the restore had finished, and ${result.output} was replaced with the verified backup.`,
          });
        }
        return;
      }
      let tables: TableReport | string;
      try {
        tables = await services.inspect(result.output);
      } catch (err) {
        tables = describeFailure(err).message;
      }
      if (mine === ticket.current) dispatch({ type: "restored", result, tables });
    } catch (err) {
      clearInterval(timer);
      if (cancelRequested.current) {
        dispatch({ type: "quit", code: interruptedExitCode, message: cancelledMessage });
      } else {
        dispatch({ type: "restoreFailed", failure: describeFailure(err) });
      }
    }
  }, [services, props.progressInterval, props.cwd]);

  const back = useCallback(() => {
    ticket.current++;
    dispatch({ type: "back" });
  }, []);

  const quit = useCallback((code: number, message: string | null) => {
    ticket.current++;
    dispatch({ type: "quit", code, message });
  }, []);

  const interrupt = useCallback(() => {
    const s = latest.current;
    if (s.exit) return;
    if (s.step === "restore" && !s.cancelling) {
      // Stop the restore and wait for it to clean up before ending.
      cancelRequested.current = true;
      dispatch({ type: "cancelRequested" });
      return;
    }
    if (s.step === "restore") {
      // Asked twice: a stalled download may not notice the cancel for a long time, so stop
      // now and remove the temporary file here instead of in the restore.
      ticket.current++;
      const where = resolve(props.cwd, s.output!);
      services.sweep(where).catch(() => []).then(() =>
        dispatch({
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
  }, [quit, services, props.cwd]);

  useDiscardKeysOnChange(`${state.step} ${state.busy !== null} ${state.existing !== null}`);

  useKeys((input, key) => {
    if (key.ctrl && input === "c") interrupt();
    // The screens take no keys while waiting; Esc abandons the wait from any of them.
    else if (key.escape && latest.current.busy) back();
  });

  useEffect(() => props.subscribeInterrupt?.(interrupt), [props.subscribeInterrupt, interrupt]);

  useEffect(() => {
    if (props.bucket !== undefined && props.bucket.trim() !== "") openBucket(props.bucket);
    // Opens the given bucket once, at start.
  }, []);

  useEffect(() => {
    if (!state.exit) return;
    state.storage?.close();
    props.onExit(state.exit.code);
    exit();
  }, [state.exit]);

  const db = state.database;
  const location = state.storage?.location ?? state.bucketText;
  const context = [
    `Bucket ${location}`,
    db?.name,
    db ? describeChoice(state.choice, db) : undefined,
  ]
    .filter(Boolean).join(" · ");
  const final = state.exit !== null;

  if (final && state.step !== "result" && state.step !== "failed") {
    return (
      <Box paddingX={1} flexDirection="column">
        <Text color={state.exit!.code === interruptedExitCode ? theme.warn : undefined}>
          {`walsync restore: ${state.exit!.message ?? nothingWritten}`}
        </Text>
      </Box>
    );
  }

  switch (state.step) {
    case "bucket":
      return (
        <BucketStep
          value={state.bucketText}
          busy={state.busy}
          error={state.bucketError}
          onChange={(text) => dispatch({ type: "bucketEdited", text })}
          onSubmit={openBucket}
        />
      );
    case "database":
      return (
        <DatabaseStep
          location={location}
          databases={state.databases}
          busy={state.busy}
          error={state.databaseError}
          onChoose={chooseDatabase}
          onBack={back}
        />
      );
    case "point":
      return (
        <PointStep
          location={location}
          database={db!}
          points={state.points}
          choice={state.choice}
          onChoose={choosePoint}
          onBack={back}
        />
      );
    case "output":
      return (
        <OutputStep
          context={context}
          value={state.outputText}
          cwd={props.cwd}
          busy={state.busy}
          error={state.outputError}
          existing={state.existing}
          onChange={(text) => dispatch({ type: "outputEdited", text })}
          onSubmit={submitOutput}
          onConfirm={() => dispatch({ type: "outputAccepted", path: state.output!, force: true })}
          onDecline={() => dispatch({ type: "overwriteDeclined" })}
          onBack={back}
        />
      );
    case "summary": {
      const target = targetOf(state.choice);
      const command = scriptedCommand({
        db: db!.name,
        bucket: state.bucketText.trim(),
        output: state.output!,
        txid: target.txid,
        timestamp: state.choice.kind === "timestamp" ? state.choice.text : undefined,
        force: state.force,
        endpoint: props.endpoint,
        region: props.region,
      });
      return (
        <SummaryStep
          location={location}
          db={db!.name}
          point={describeChoice(state.choice, db!)}
          output={absolute(state.output!, props.cwd)}
          force={state.force}
          command={command}
          onStart={startRestore}
          onBack={back}
        />
      );
    }
    case "restore":
      return (
        <RestoreStep
          context={context}
          db={db!.name}
          output={absolute(state.output!, props.cwd)}
          progress={state.progress!}
          cancelling={state.cancelling}
        />
      );
    case "result":
      return (
        <ResultStep
          context={context}
          result={state.result!}
          tables={state.tables}
          final={final}
          onDone={() => quit(0, null)}
        />
      );
    case "failed":
      return (
        <ErrorStep
          context={context}
          failure={state.failure!}
          db={db!.name}
          bucket={state.bucketText.trim()}
          output={absolute(state.output!, props.cwd)}
          force={state.force}
          final={final}
          onBack={back}
          onDone={() => quit(state.failure!.exitCode, null)}
        />
      );
  }
}

function absolute(path: string, cwd: string): string {
  return resolve(cwd, path);
}
