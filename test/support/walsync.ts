/**
 * Running Walsync as the operator does: `walsync <args>` to completion, or a long-lived command
 * (`watch`, `replicate`) in the background with its stderr collected; and restores compared with
 * their source by content.
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BucketArg } from "./bucket.ts";
import { dbFingerprint } from "./sqlite.ts";
import { sleep } from "./wait.ts";

/** Absolute path of `main.ts`. */
export const mainTs = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "main.ts");

/** What a finished process printed. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `walsync` (through `deno run`) with arguments and extra environment, to completion.
 * @example
 * const r = await walsync(["verify", "app.db", "--bucket", bucket.arg], { env: bucket.env });
 * assert.equal(r.code, 0, r.stderr);
 */
export async function walsync(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", mainTs, ...args],
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** A running `walsync` command (`watch`, `replicate`, ...). */
export interface WalsyncProcess {
  /** Process id. */
  pid: number;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** Whether it has exited. */
  exited(): boolean;
  /** Waits until the log matches `pattern` at least `count` times; throws with the log on timeout. */
  waitForLog(pattern: RegExp, options?: { timeoutMs?: number; count?: number }): Promise<void>;
  /** Sends `signal` (SIGTERM) and waits; returns the exit code, how long it took and the log. */
  stop(signal?: Deno.Signal): Promise<{ code: number; ms: number; log: string }>;
  /** SIGKILL when still running, and wait (for `finally`). */
  kill(): Promise<void>;
}

function countMatches(text: string, pattern: RegExp): number {
  const flags = pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g";
  return [...text.matchAll(new RegExp(pattern.source, flags))].length;
}

/**
 * Starts `walsync <args>` in the background (stdout discarded, stderr collected).
 * @example
 * const watch = startWalsync(["watch", db, "--bucket", bucket.arg], { env: bucket.env });
 * await watch.waitForLog(/watching/);
 * const { code } = await watch.stop();
 */
export function startWalsync(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): WalsyncProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", mainTs, ...args],
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  let status: Deno.CommandStatus | null = null;
  const done = child.status.then((s) => (status = s));
  const what = `walsync ${args[0] ?? ""}`.trim();
  return {
    pid: child.pid,
    log: () => text,
    exited: () => status !== null,
    async waitForLog(pattern, opts = {}) {
      const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
      const count = opts.count ?? 1;
      while (countMatches(text, pattern) < count) {
        if (status) {
          await reading;
          if (countMatches(text, pattern) >= count) return;
          throw new Error(
            `${what} exited (code ${status.code}) before logging ${pattern}:\n${text}`,
          );
        }
        if (Date.now() > deadline) {
          throw new Error(`${what} did not log ${pattern} ×${count} in time:\n${text}`);
        }
        await sleep(50);
      }
    },
    async stop(signal = "SIGTERM") {
      const started = Date.now();
      if (!status) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
      const s = await done;
      await reading;
      return { code: s.code, ms: Date.now() - started, log: text };
    },
    async kill() {
      if (!status) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await done;
      await reading.catch(() => {});
    },
  };
}

/** Options for {@link startWatch}. */
export interface WatchStart {
  /** `--sync-interval`; 100ms unless given. */
  syncInterval?: string;
  /** More arguments after the bucket. */
  args?: string[];
  /** More environment. */
  env?: Record<string, string>;
}

/** Starts `walsync watch <dbs> --bucket <bucket> --sync-interval 100ms` with stderr collected. */
export function startWatch(
  bucket: BucketArg,
  dbs: string[],
  options: WatchStart = {},
): WalsyncProcess {
  const args = [
    "watch",
    ...dbs,
    "--bucket",
    bucket.arg,
    "--sync-interval",
    options.syncInterval ?? "100ms",
    ...(options.args ?? []),
  ];
  return startWalsync(args, { env: { ...bucket.env, ...options.env } });
}

/** Runs `walsync restore <args> -o <a fresh file of dir>`; returns the CLI's result and the file. */
export async function restoreInto(
  dir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<RunResult & { out: string }> {
  const out = join(dir, `restored-${crypto.randomUUID().slice(0, 8)}.db`);
  const r = await walsync(["restore", ...args, "-o", out], { env });
  return { ...r, out };
}

/** Restores `name` from `bucket` into a fresh file in `dir`; returns the CLI's result. */
export function tryRestore(
  bucket: BucketArg,
  name: string,
  dir: string,
  extra: string[] = [],
): Promise<RunResult & { out: string }> {
  return restoreInto(dir, [name, "--bucket", bucket.arg, ...extra], bucket.env);
}

/** Restores `name` from `bucket` into a fresh file in `dir`; asserts exit 0. */
export async function restoreTo(
  bucket: BucketArg,
  name: string,
  dir: string,
  extra: string[] = [],
): Promise<string> {
  const r = await tryRestore(bucket, name, dir, extra);
  assert.equal(r.code, 0, `restore ${name} ${extra.join(" ")} failed:\n${r.stderr}${r.stdout}`);
  return r.out;
}

/** Asserts that a restore of `name` has exactly the content of `source` and passes integrity_check. */
export async function assertRestoresExactly(
  bucket: BucketArg,
  source: string,
  name: string,
  dir: string,
  extra: string[] = [],
): Promise<string> {
  const out = await restoreTo(bucket, name, dir, extra);
  const [want, got] = await Promise.all([dbFingerprint(source), dbFingerprint(out)]);
  assert.equal(got.integrity, "ok");
  assert.equal(want.integrity, "ok");
  assert.equal(got.sha3, want.sha3, `restore of ${name} differs from ${source}`);
  return out;
}

/** Whether a restore taken now equals `db`, polled until `timeoutMs`. */
export async function restoresWithin(
  bucket: BucketArg,
  db: string,
  name: string,
  dir: string,
  timeoutMs: number,
): Promise<boolean> {
  const source = (await dbFingerprint(db)).sha3;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await tryRestore(bucket, name, dir);
    if (r.code === 0) {
      const same = (await dbFingerprint(r.out)).sha3 === source;
      await Deno.remove(r.out);
      if (same) return true;
    }
    await sleep(200);
  }
  return false;
}
