/**
 * The screen of the current step, drawn from the wizard's state; keys the screens report go
 * to the wizard's handlers (`wizard_actions.ts`) or straight to the reducer.
 * @module
 */
import { Box, Text } from "ink";
import { resolve } from "node:path";
import type { Dispatch, ReactNode } from "react";
import { BucketStep } from "./bucket_step.tsx";
import { scriptedCommand } from "./command_line.ts";
import { DatabaseStep } from "./database_step.tsx";
import { ErrorStep } from "./error_step.tsx";
import { OutputStep } from "./output_step.tsx";
import { describeChoice, PointStep } from "./point_step.tsx";
import { RestoreStep } from "./restore_step.tsx";
import { restoreTarget } from "./restore_run.ts";
import { ResultStep } from "./result_step.tsx";
import { interruptedExitCode, type Step, type WizardAction, type WizardState } from "./state.ts";
import { SummaryStep } from "./summary_step.tsx";
import { useTheme } from "./theme.tsx";
import { nothingWritten, type WizardActions } from "./wizard_actions.ts";

/** Props of {@link StepView}. */
export interface StepViewProps {
  /** Everything the wizard knows. */
  state: WizardState;
  /** The reducer's dispatcher, for edits that need no effect. */
  dispatch: Dispatch<WizardAction>;
  /** The wizard's handlers. */
  actions: WizardActions;
  /** Directory relative output paths start from. */
  cwd: string;
  /** `--endpoint`, repeated in the scripted command. */
  endpoint?: string;
  /** `--region`, repeated in the scripted command. */
  region?: string;
}

/** What each screen is drawn from: the props plus what several screens show. */
interface ScreenInput extends StepViewProps {
  /** The bucket opened, or as typed. */
  location: string;
  /** Context line: bucket · database · point. */
  context: string;
  /** The wizard has ended (the result and error screens stay up, without key hints). */
  final: boolean;
}

function absolute(path: string, cwd: string): string {
  return resolve(cwd, path);
}

function summaryCommand({ state, endpoint, region }: ScreenInput): string[] {
  const target = restoreTarget(state.choice);
  return scriptedCommand({
    db: state.database!.name,
    bucket: state.bucketText.trim(),
    output: state.output!,
    txid: target.txid,
    timestamp: state.choice.kind === "timestamp" ? state.choice.text : undefined,
    force: state.force,
    endpoint,
    region,
  });
}

// One function per screen, called (not mounted) so the tree is the step component itself.
const screens: { [S in Step]: (input: ScreenInput) => ReactNode } = {
  bucket: ({ state, dispatch, actions }) => (
    <BucketStep
      value={state.bucketText}
      busy={state.busy}
      error={state.bucketError}
      onChange={(text) => dispatch({ type: "bucketEdited", text })}
      onSubmit={actions.openBucket}
    />
  ),
  database: ({ state, actions, location }) => (
    <DatabaseStep
      location={location}
      databases={state.databases}
      busy={state.busy}
      error={state.databaseError}
      onChoose={actions.chooseDatabase}
      onBack={actions.back}
    />
  ),
  point: ({ state, actions, location }) => (
    <PointStep
      location={location}
      database={state.database!}
      points={state.points}
      choice={state.choice}
      onChoose={actions.choosePoint}
      onBack={actions.back}
    />
  ),
  output: ({ state, dispatch, actions, context, cwd }) => (
    <OutputStep
      context={context}
      value={state.outputText}
      cwd={cwd}
      busy={state.busy}
      error={state.outputError}
      existing={state.existing}
      onChange={(text) => dispatch({ type: "outputEdited", text })}
      onSubmit={actions.submitOutput}
      onConfirm={() => dispatch({ type: "outputAccepted", path: state.output!, force: true })}
      onDecline={() => dispatch({ type: "overwriteDeclined" })}
      onBack={actions.back}
    />
  ),
  summary: (input) => (
    <SummaryStep
      location={input.location}
      db={input.state.database!.name}
      point={describeChoice(input.state.choice, input.state.database!)}
      output={absolute(input.state.output!, input.cwd)}
      force={input.state.force}
      command={summaryCommand(input)}
      onStart={input.actions.startRestore}
      onBack={input.actions.back}
    />
  ),
  restore: ({ state, context, cwd }) => (
    <RestoreStep
      context={context}
      db={state.database!.name}
      output={absolute(state.output!, cwd)}
      progress={state.progress!}
      cancelling={state.cancelling}
    />
  ),
  result: ({ state, actions, context, final }) => (
    <ResultStep
      context={context}
      result={state.result!}
      tables={state.tables}
      final={final}
      onDone={() => actions.quit(0, null)}
    />
  ),
  failed: ({ state, actions, context, cwd, final }) => (
    <ErrorStep
      context={context}
      failure={state.failure!}
      db={state.database!.name}
      bucket={state.bucketText.trim()}
      output={absolute(state.output!, cwd)}
      force={state.force}
      final={final}
      onBack={actions.back}
      onDone={() => actions.quit(state.failure!.exitCode, null)}
    />
  ),
};

/**
 * The current step's screen; once the wizard has ended anywhere but on the result or error
 * screen, only its last words.
 */
export function StepView(props: StepViewProps): ReactNode {
  const theme = useTheme();
  const { state } = props;
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
  return screens[state.step]({ ...props, location, context, final });
}
