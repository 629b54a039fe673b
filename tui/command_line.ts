/**
 * The scripted equivalent of what the wizard is about to do, so the operator can repeat it
 * (or paste it into a runbook) without the wizard.
 * @module
 */

/** What a restore needs, in the terms of `walsync restore`'s options. */
export interface ScriptedRestore {
  /** Database name. */
  db: string;
  /** `--bucket` value as given. */
  bucket: string;
  /** `-o` path as given. */
  output: string;
  /** `--txid N`. */
  txid?: number;
  /** `--timestamp T` (RFC 3339 text). */
  timestamp?: string;
  /** `--force`: replace an existing output file. */
  force?: boolean;
  /** `--endpoint`, when the wizard was given one. */
  endpoint?: string;
  /** `--region`, when the wizard was given one. */
  region?: string;
}

const plainWord = /^[A-Za-z0-9_\-.,:/=@+%]+$/;

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (plainWord.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The command line as shell words, already quoted. */
export function scriptedCommand(restore: ScriptedRestore): string[] {
  const words = ["walsync", "restore", restore.db, "--bucket", restore.bucket];
  if (restore.endpoint) words.push("--endpoint", restore.endpoint);
  if (restore.region) words.push("--region", restore.region);
  words.push("-o", restore.output);
  if (restore.txid !== undefined) words.push("--txid", String(restore.txid));
  if (restore.timestamp !== undefined) words.push("--timestamp", restore.timestamp);
  if (restore.force) words.push("--force");
  return words.map(shellQuote);
}

/**
 * Lays shell words out in lines of at most `width` columns, continued with ` \`.
 *
 * The wizard breaks the line itself because a terminal's own wrapping would turn into
 * newlines when copied, and a pasted newline would run half a command.
 */
export function commandLines(words: string[], width: number): string[] {
  // An option and its value stay together, so no line ends in a dangling flag.
  const pieces: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const next = words[i + 1];
    if (words[i].startsWith("-") && next !== undefined && !next.startsWith("-")) {
      pieces.push(`${words[i]} ${next}`);
      i++;
    } else {
      pieces.push(words[i]);
    }
  }
  const lines: string[] = [];
  let line = "";
  for (const piece of pieces) {
    const candidate = line === "" ? piece : `${line} ${piece}`;
    if (line !== "" && candidate.length + 2 > width) {
      lines.push(`${line} \\`);
      line = `    ${piece}`;
    } else {
      line = candidate;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}
