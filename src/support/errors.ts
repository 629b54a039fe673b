/**
 * Errors that carry the process exit code a script can act on.
 *
 * Exit codes (shared with walsync-rust so scripts carry over):
 * 0 ok, 1 other failure, 2 usage error, 3 storage unreachable or access denied,
 * 4 database error, 5 checksum or integrity failure.
 * @module
 */

/** Exit codes of the `walsync` command. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  storage: 3,
  database: 4,
  integrity: 5,
} as const;

/** One of the values of {@link ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** What went wrong, in words a script can switch on (`--json` prints it as `error.kind`). */
export type ErrorKind = "failure" | "usage" | "storage" | "database" | "integrity";

/** Extra facts about an integrity failure: which object, and what was expected. */
export interface IntegrityDetail {
  /** Storage key of the object that failed. */
  key: string;
  /** What the metadata or the chain promised. */
  expected?: string;
  /** What was found. */
  actual?: string;
}

/**
 * An error meant for the operator: one line that names the problem and the fix,
 * never a stack trace, never a secret.
 * @example
 * ```ts
 * throw new WalsyncError("storage", "bucket backups is not reachable; check --endpoint");
 * // at the top level: print err.message alone, then Deno.exit(err.exitCode) (3 here)
 * ```
 */
export class WalsyncError extends Error {
  /** Category, which decides the exit code. */
  readonly kind: ErrorKind;
  /** Object details for integrity failures. */
  readonly detail?: IntegrityDetail;

  /** Creates an error of the given kind with a one-line message. */
  constructor(kind: ErrorKind, message: string, detail?: IntegrityDetail) {
    super(message);
    this.name = "WalsyncError";
    this.kind = kind;
    this.detail = detail;
  }

  /** The process exit code for this error. */
  get exitCode(): ExitCodeValue {
    return ExitCode[this.kind];
  }
}

/** Shorthand for an integrity failure on one object (exit code 5). */
export function integrityError(
  key: string,
  problem: string,
  expected?: string,
  actual?: string,
): WalsyncError {
  const parts = [`${key}: ${problem}`];
  if (expected !== undefined) parts.push(`expected ${expected}`);
  if (actual !== undefined) parts.push(`actual ${actual}`);
  return new WalsyncError("integrity", parts.join(", "), { key, expected, actual });
}

/** Shorthand for a usage error (exit code 2). */
export function usageError(message: string): WalsyncError {
  return new WalsyncError("usage", message);
}

/**
 * When `err` is the file system refusing access (permission bits, an immutable file, a
 * read-only mount: EACCES, EPERM, EROFS), the reason in words ("Permission denied"); else null.
 * @example
 * ```ts
 * const reason = accessRefused(err); // "Operation not permitted" for a chattr +i directory
 * if (reason) throw usageError(`cannot write in ${dir} (${reason}); …`);
 * ```
 */
export function accessRefused(err: unknown): string | null {
  const message = err instanceof Error ? err.message : String(err);
  const os = /^(.*?) \(os error (1|13|30)\)/.exec(message);
  if (os) return os[1];
  return err instanceof Deno.errors.PermissionDenied ? message : null;
}
