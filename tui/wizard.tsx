/**
 * The interactive restore wizard. (Being written.)
 * @module
 */

/** Where the wizard starts: values given on the command line or in the environment. */
export interface WizardOptions {
  /** `--bucket` value, if given. */
  bucket?: string;
  /** `--endpoint` value, if given. */
  endpoint?: string;
  /** `--region` value, if given. */
  region?: string;
}

/** Runs the wizard on the terminal and returns the process exit code. */
export function runWizard(_options: WizardOptions): Promise<number> {
  return Promise.reject(new Error("the restore wizard is not available yet"));
}
