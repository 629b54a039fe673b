/**
 * What the command line prints: text lines on stdout, one JSON document with `--json`, notes
 * and errors on stderr, and a byte progress line on a terminal. Everything printed passes
 * through `redact`, so a secret from a config file or the environment never reaches a log.
 * @module
 */
import { redact } from "../support/redact.ts";
import { progress } from "../support/progress.ts";

const encoder = new TextEncoder();

/** Writes `text` to stdout as it is (commander's help and version output). */
export function writeStdout(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text));
}

/** Writes `text` to stderr, redacted (commander's usage errors). */
export function writeStderr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(redact(text)));
}

/** Prints one line on stdout. */
export function out(text: string): void {
  writeStdout(redact(text) + "\n");
}

/** Prints one line on stderr. */
export function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(redact(text) + "\n"));
}

/** Prints `value` as one indented JSON document on stdout. */
export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/**
 * Prints a command's outcome: `document` as JSON with `--json`, else the text lines that
 * `printText` writes. Every command that ends with a result goes through here.
 *
 * @example
 * ```ts
 * printOutcome(options.json, { ok: true, command: "snapshot", ...result }, () => {
 *   out(`✓ Snapshot of ${result.db} uploaded`);
 * });
 * ```
 */
export function printOutcome(
  json: boolean | undefined,
  document: Record<string, unknown>,
  printText: () => void,
): void {
  if (json) printJson(document);
  else printText();
}

/** A progress line fed with byte counts; `done` clears it and may be called more than once. */
export interface ByteProgress {
  /** Reports bytes done out of `total`. */
  onBytes(done: number, total: number): void;
  /** Clears the line. */
  done(): void;
}

/**
 * A byte progress line on stderr when it is a terminal. With `--json` and stderr not a
 * terminal nothing is drawn, so a script reading both streams sees only the document.
 */
export function byteProgress(label: string, json: boolean | undefined): ByteProgress {
  const bar = progress(label, 0, false);
  return {
    onBytes: (done: number, total: number) => {
      if (json && !Deno.stderr.isTerminal()) return;
      bar.setTotal(total);
      bar.update(done);
    },
    done: () => bar.done(),
  };
}

/** One line on how a backup's history is anchored and whether it is signed. */
export function historyLine(
  h: { format: 2 | 3; signed: boolean; signatureChecked: boolean; unreached?: string[] },
): string {
  const anchor = h.format === 3 ? "history anchored by its head" : "format 2 bucket (no head)";
  const signed = h.signed
    ? h.signatureChecked ? "signed, signatures checked" : "signed, not checked (no key)"
    : h.signatureChecked
    ? "signatures checked"
    : "not signed";
  const extra = h.unreached?.length
    ? `; ${h.unreached.length} object(s) not reached from the head (not used): ${
      h.unreached.slice(0, 3).join(", ")
    }${h.unreached.length > 3 ? ", …" : ""}`
    : "";
  return `  ${anchor}, ${signed}${extra}`;
}
