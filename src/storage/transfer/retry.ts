/**
 * Retries of damaged or interrupted transfers: how many attempts, how long to wait between
 * them, and one log line per retry. The count of retries in this process is what `--json`
 * reports for a restore or a snapshot (`retries`).
 * @module
 */
import { WalsyncError } from "../../support/errors.ts";
import { type Logger, stderrLogger } from "../../support/log.ts";

/** Attempts for one object (the first one included) before its damage counts as lasting. */
export const transferAttempts = 3;

/** Resumes (ranged re-requests) allowed for one range after connections dropped mid-body. */
export const resumeAttempts = 5;

/** One retry, as logged. */
export interface RetryEvent {
  /** What was retried: an upload, a download, or a range resumed after a dropped connection. */
  op: "upload" | "upload part" | "download" | "resume";
  /** Storage key. */
  key: string;
  /** The attempt about to start (2 for the first retry). */
  attempt: number;
  /** The most attempts there will be. */
  of: number;
  /** Why, in a few words (never a secret: built from codes and digests only). */
  reason: string;
  /** For a resume: the byte offset it continues from. */
  from?: number;
}

let logger: Logger | undefined;
let count = 0;

/** Sends retry lines to `target` instead of plain text on stderr (`watch` passes its logger). */
export function setRetryLogger(target: Logger | undefined): void {
  logger = target;
}

/** Records and logs one retry. */
export function reportRetry(event: RetryEvent): void {
  count++;
  (logger ??= stderrLogger(false)).log("WARN", `retrying ${event.op}`, {
    key: event.key,
    attempt: `${event.attempt}/${event.of}`,
    from: event.from,
    reason: event.reason,
  });
}

/** Retries so far in this process; a command reports the difference over its own run. */
export function retriesSoFar(): number {
  return count;
}

/** Waits before attempt `attempt` (2, 3, …): 100 ms, 200 ms, 400 ms … capped at 2 s. */
export function backoff(attempt: number): Promise<void> {
  const ms = Math.min(2_000, 100 * 2 ** Math.max(0, attempt - 2));
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A short reason for a log line: an integrity problem without the key and digests. */
export function retryReason(err: unknown): string {
  if (err instanceof WalsyncError && err.detail) {
    return err.message.slice(err.detail.key.length + 2).split(", expected")[0];
  }
  return err instanceof Error ? err.message : String(err);
}
