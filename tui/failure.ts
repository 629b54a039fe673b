/**
 * Any error, turned into what a screen shows and the exit code the wizard ends with.
 * @module
 */
import {
  type ErrorKind,
  ExitCode,
  type IntegrityDetail,
  WalsyncError,
} from "../src/support/errors.ts";
import { redact } from "../src/support/redact.ts";

/** An error as the wizard shows it. */
export interface Failure {
  /** Category (decides the exit code and the wording of the screen). */
  kind: ErrorKind;
  /** Exit code the wizard returns if the operator quits on this error. */
  exitCode: number;
  /** One line naming the problem, secrets blanked. */
  message: string;
  /** For integrity failures: the object, and the digest expected vs found. */
  detail?: IntegrityDetail;
}

/** Describes an error for a screen. */
export function describeFailure(error: unknown): Failure {
  if (error instanceof WalsyncError) {
    return {
      kind: error.kind,
      exitCode: error.exitCode,
      message: redact(error.message),
      detail: error.detail,
    };
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return {
      kind: "failure",
      exitCode: ExitCode.failure,
      message: redact(`permission denied: ${error.message}`),
    };
  }
  const text = error instanceof Error ? error.message : String(error);
  return {
    kind: "failure",
    exitCode: ExitCode.failure,
    message: redact(`internal error: ${text}`),
  };
}
