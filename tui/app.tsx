/**
 * The wizard: one screen per step over the state machine in `state.ts`. The handlers in
 * `wizard_actions.ts` run the effects (opening storage, listing, restoring) through injected
 * services and dispatch their results; `StepView` draws the current step, whose components
 * only show state and report keys.
 * @module
 */
import { useApp } from "ink";
import { type ReactNode, useEffect, useReducer } from "react";
import { KeyProvider, useDiscardKeysOnChange, useKeys } from "./keys.tsx";
import type { WizardServices } from "./services.ts";
import { initialState, wizardReducer } from "./state.ts";
import { StepView } from "./step_view.tsx";
import { useWizardActions } from "./wizard_actions.ts";

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
  const { exit } = useApp();
  const [state, dispatch] = useReducer(wizardReducer, props.bucket, initialState);
  const actions = useWizardActions(state, dispatch, services, {
    cwd: props.cwd,
    home: props.home,
    progressInterval: props.progressInterval,
  });
  const { interrupt } = actions;

  useDiscardKeysOnChange(`${state.step} ${state.busy !== null} ${state.existing !== null}`);

  useKeys((input, key) => {
    if (key.ctrl && input === "c") interrupt();
    // The screens take no keys while waiting; Esc abandons the wait from any of them.
    else if (key.escape && actions.waiting()) actions.back();
  });

  useEffect(() => props.subscribeInterrupt?.(interrupt), [props.subscribeInterrupt, interrupt]);

  useEffect(() => {
    if (props.bucket !== undefined && props.bucket.trim() !== "") actions.openBucket(props.bucket);
    // Opens the given bucket once, at start.
  }, []);

  useEffect(() => {
    if (!state.exit) return;
    state.storage?.close();
    props.onExit(state.exit.code);
    exit();
  }, [state.exit]);

  return (
    <StepView
      state={state}
      dispatch={dispatch}
      actions={actions}
      cwd={props.cwd}
      endpoint={props.endpoint}
      region={props.region}
    />
  );
}
