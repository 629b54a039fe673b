/**
 * Free space: checked before a large write where the size is known, and a full disk during
 * the write turned into one line naming the directory and the space (exit 1) instead of an
 * "internal error".
 * @module
 */
import { statfs } from "node:fs/promises";
import { type ErrorKind, WalsyncError } from "../../support/errors.ts";
import { formatBytes } from "../../support/progress.ts";

/** Bytes an unprivileged writer can still use in the file system holding `dir`, or null if unknown. */
export async function freeBytes(dir: string): Promise<number | null> {
  try {
    const fs = await statfs(dir);
    return Number(fs.bavail) * Number(fs.bsize);
  } catch {
    return null;
  }
}

function describe(needed: number, free: number | null): string {
  const freeText = free === null ? "an unknown amount" : formatBytes(free);
  return `needs ${formatBytes(needed)} (${needed} bytes), ${freeText}${
    free === null ? "" : ` (${free} bytes)`
  } free`;
}

/**
 * Throws an error of `kind` (default `failure`, exit 1) with the numbers when `dir` has less
 * than `needed` bytes free; does nothing when the free space cannot be read.
 * @example
 * await checkFreeSpace("/var/lib/app", 1 << 30, "restore");
 */
export async function checkFreeSpace(
  dir: string,
  needed: number,
  what: string,
  kind: ErrorKind = "failure",
): Promise<void> {
  const free = await freeBytes(dir);
  if (free === null || free >= needed) return;
  throw new WalsyncError(
    kind,
    `not enough free space for the ${what} in ${dir}: it ${
      describe(needed, free)
    }; free up space there or write somewhere else`,
  );
}

/** Whether an error is the file system running out of space (ENOSPC, or SQLite's "disk is full"). */
export function isDiskFull(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e?.code === "ENOSPC") return true;
  const message = typeof e?.message === "string" ? e.message : "";
  return /os error 28|No space left on device|database or disk is full/i.test(message);
}

/** The one-line error for a disk that filled up while writing into `dir`. */
export async function diskFullError(
  dir: string,
  needed: number,
  what: string,
  kind: ErrorKind = "failure",
): Promise<WalsyncError> {
  const free = await freeBytes(dir);
  return new WalsyncError(
    kind,
    `${dir} ran out of space during the ${what} (it ${
      describe(needed, free)
    } now; nothing was kept); free up space there or write somewhere else`,
  );
}
