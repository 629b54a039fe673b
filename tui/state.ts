/**
 * The wizard as a state machine: which screen is up, what has been chosen so far, and how
 * each event moves it on. Pure: the `App` component runs the effects and dispatches results.
 *
 * Screens, in order: bucket → database → point → output → summary → restore → result,
 * with `failed` reachable from the restore. Esc (`back`) walks the same order backwards.
 * @module
 */
import type { ListedDatabase, RestorePoint } from "../src/ops/list.ts";
import type { RestoreResult } from "../src/ops/restore.ts";
import type { Storage } from "../src/storage/storage.ts";
import type { Failure } from "./failure.ts";
import type { TableReport } from "./table_report.ts";

/** The screens. */
export type Step =
  | "bucket"
  | "database"
  | "point"
  | "output"
  | "summary"
  | "restore"
  | "result"
  | "failed";

/** What to restore: the latest state, one listed point, or the state at a typed time. */
export type PointChoice =
  | { kind: "latest" }
  | { kind: "point"; point: RestorePoint }
  | { kind: "timestamp"; text: string };

/** Bytes restored so far, for the progress bar. */
export interface RestoreProgress {
  /** Bytes downloaded and checked. */
  done: number;
  /** Bytes expected (0 until the restore knows). */
  total: number;
  /** `performance.now()` when the restore started. */
  startedAt: number;
  /** `performance.now()` of this sample. */
  at: number;
}

/** Everything the wizard knows. */
export interface WizardState {
  /** Screen shown. */
  step: Step;
  /** What is being waited for, e.g. "Opening the bucket"; the screen ignores keys meanwhile. */
  busy: string | null;
  /** The bucket as given or typed. */
  bucketText: string;
  /** Why the bucket could not be used (shown under the prompt). */
  bucketError: Failure | null;
  /** Opened storage. */
  storage: Storage | null;
  /** Databases in the bucket. */
  databases: ListedDatabase[];
  /** The chosen database. */
  database: ListedDatabase | null;
  /** Why the chosen database's points could not be read (shown on the database screen). */
  databaseError: string | null;
  /** Restore points of the chosen database. */
  points: RestorePoint[];
  /** The chosen point. */
  choice: PointChoice;
  /** The output path as typed (starts as the default). */
  outputText: string;
  /** Why the output path cannot be used. */
  outputError: string | null;
  /** Files that exist at the output path, while the operator is asked whether to replace them. */
  existing: string[] | null;
  /** The accepted output path. */
  output: string | null;
  /** The operator confirmed replacing existing files. */
  force: boolean;
  /** Restore progress. */
  progress: RestoreProgress | null;
  /** Ctrl-C was pressed during the restore; waiting for it to stop and clean up. */
  cancelling: boolean;
  /** What the restore did. */
  result: RestoreResult | null;
  /** Row counts of the restored database, or why they could not be read. */
  tables: TableReport | string | null;
  /** Why the restore failed. */
  failure: Failure | null;
  /** Set when the wizard ends: exit code and the last words on screen. */
  exit: { code: number; message: string | null } | null;
}

/** Events that move the wizard. */
export type WizardAction =
  | { type: "busy"; message: string }
  | { type: "idle" }
  | { type: "bucketEdited"; text: string }
  | { type: "bucketFailed"; failure: Failure }
  | { type: "bucketOpened"; storage: Storage; databases: ListedDatabase[] }
  | { type: "databaseFailed"; message: string }
  | { type: "databaseChosen"; database: ListedDatabase; points: RestorePoint[] }
  | { type: "pointChosen"; choice: PointChoice; defaultOutput: string }
  | { type: "outputEdited"; text: string }
  | { type: "outputFailed"; message: string }
  | { type: "outputExists"; path: string; existing: string[] }
  | { type: "outputAccepted"; path: string; force: boolean }
  | { type: "overwriteDeclined" }
  | { type: "restoreStarted"; at: number }
  | { type: "progress"; done: number; total: number; at: number }
  | { type: "cancelRequested" }
  | { type: "restored"; result: RestoreResult; tables: TableReport | string }
  | { type: "restoreFailed"; failure: Failure }
  | { type: "back" }
  | { type: "quit"; code: number; message: string | null };

/** Exit code for Ctrl-C or quitting before a restore finished. */
export const interruptedExitCode = 130;

/** The state the wizard starts in; with a bucket given, it is opened straight away. */
export function initialState(bucket?: string): WizardState {
  return {
    step: "bucket",
    busy: null,
    bucketText: bucket ?? "",
    bucketError: null,
    storage: null,
    databases: [],
    database: null,
    databaseError: null,
    points: [],
    choice: { kind: "latest" },
    outputText: "",
    outputError: null,
    existing: null,
    output: null,
    force: false,
    progress: null,
    cancelling: false,
    result: null,
    tables: null,
    failure: null,
    exit: null,
  };
}

/** The exit code for quitting now: what the screen shows decides. */
export function quitCode(state: WizardState): number {
  if (state.step === "result") return 0;
  if (state.step === "failed" && state.failure) return state.failure.exitCode;
  // An unreachable bucket is a storage failure even when the operator gives up on it.
  if (state.step === "bucket" && state.bucketError?.kind === "storage") {
    return state.bucketError.exitCode;
  }
  return interruptedExitCode;
}

/** Moves the wizard on by one event. */
export function wizardReducer(state: WizardState, action: WizardAction): WizardState {
  if (state.exit) return state; // the wizard has ended; late async results change nothing
  switch (action.type) {
    case "busy":
      return { ...state, busy: action.message };
    case "idle":
      return { ...state, busy: null };
    case "bucketEdited":
      return { ...state, bucketText: action.text, bucketError: null };
    case "bucketFailed":
      return { ...state, step: "bucket", busy: null, bucketError: action.failure };
    case "bucketOpened":
      return {
        ...state,
        step: "database",
        busy: null,
        bucketError: null,
        storage: action.storage,
        databases: action.databases,
        databaseError: null,
      };
    case "databaseFailed":
      return { ...state, busy: null, databaseError: action.message };
    case "databaseChosen": {
      const same = state.database?.name === action.database.name;
      return {
        ...state,
        step: "point",
        busy: null,
        database: action.database,
        databaseError: null,
        points: action.points,
        choice: same ? state.choice : { kind: "latest" },
        // A path typed for another database must not carry over to this one.
        outputText: same ? state.outputText : "",
      };
    }
    case "pointChosen":
      return {
        ...state,
        step: "output",
        choice: action.choice,
        outputText: state.outputText === "" ? action.defaultOutput : state.outputText,
        outputError: null,
        existing: null,
      };
    case "outputEdited":
      return { ...state, outputText: action.text, outputError: null, existing: null };
    case "outputFailed":
      return { ...state, busy: null, outputError: action.message, existing: null };
    case "outputExists":
      return {
        ...state,
        busy: null,
        outputError: null,
        existing: action.existing,
        output: action.path,
      };
    case "outputAccepted":
      return {
        ...state,
        step: "summary",
        busy: null,
        outputError: null,
        existing: null,
        output: action.path,
        force: action.force,
      };
    case "overwriteDeclined":
      return { ...state, existing: null, output: null, force: false };
    case "restoreStarted":
      return {
        ...state,
        step: "restore",
        progress: { done: 0, total: 0, startedAt: action.at, at: action.at },
        cancelling: false,
        failure: null,
        result: null,
        tables: null,
      };
    case "progress":
      if (!state.progress) return state;
      return {
        ...state,
        progress: { ...state.progress, done: action.done, total: action.total, at: action.at },
      };
    case "cancelRequested":
      return { ...state, cancelling: true };
    case "restored":
      return { ...state, step: "result", busy: null, result: action.result, tables: action.tables };
    case "restoreFailed":
      return { ...state, step: "failed", busy: null, failure: action.failure };
    case "back":
      return goBack(state);
    case "quit":
      return { ...state, busy: null, exit: { code: action.code, message: action.message } };
  }
}

function goBack(state: WizardState): WizardState {
  // Esc while waiting abandons the wait and leaves the operator on the same screen.
  if (state.busy) return { ...state, busy: null };
  switch (state.step) {
    case "bucket":
    case "restore":
    case "result":
      return state;
    case "database":
      return { ...state, step: "bucket", databaseError: null };
    case "point":
      return { ...state, step: "database" };
    case "output":
      if (state.existing) return { ...state, existing: null, output: null, force: false };
      return { ...state, step: "point", outputError: null };
    case "summary":
      return { ...state, step: "output", force: false };
    case "failed":
      // Most useful next move after a failed restore: pick another (earlier) point.
      return { ...state, step: "point", failure: null, force: false };
  }
}
