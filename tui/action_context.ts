/**
 * What the wizard's event handlers share (see `wizard_actions.ts` and `restore_run.ts`).
 * @module
 */
import type { Dispatch } from "react";
import type { WizardServices } from "./services.ts";
import type { WizardAction, WizardState } from "./state.ts";

/** What the wizard's handlers share: services, the dispatcher and the refs they read. */
export interface ActionContext {
  /** Storage, restore and file system access. */
  services: WizardServices;
  /** The wizard's reducer dispatcher. */
  dispatch: Dispatch<WizardAction>;
  /** The state of the latest render (handlers run from keys and promises, between renders). */
  latest: { readonly current: WizardState };
  /** Bumped whenever a wait is abandoned (Esc, quit), so a late answer is dropped. */
  ticket: { current: number };
  /** Ctrl-C was pressed during the restore. */
  cancelRequested: { current: boolean };
}
