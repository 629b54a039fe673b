/**
 * Tools for the `watch` tests: run `walsync watch` as a real background process and read its
 * log, drive an application with the `sqlite3` CLI in bash loops, and compare a restore with
 * the source by content.
 * @module
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  dbFingerprint,
  mainTs,
  type RunResult,
  s3BucketOn,
  type S3TestBucket,
  type TestBucket,
  walsync,
} from "./helpers.ts";

/** What the CLI needs to reach a bucket. */
export type BucketArg = Pick<TestBucket, "arg" | "env">;

/** A running `walsync watch`. */
export interface WatchProcess {
  /** Process id. */
  pid: number;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** Waits until the log matches `pattern` at least `count` times; throws with the log on timeout. */
  waitForLog(pattern: RegExp, options?: { timeoutMs?: number; count?: number }): Promise<void>;
  /** Sends `signal` and waits for the exit; returns the exit code and how long it took. */
  stop(signal?: Deno.Signal): Promise<{ code: number; ms: number; log: string }>;
  /** SIGKILL if still running, and wait (for `finally`). */
  kill(): Promise<void>;
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

function countMatches(text: string, pattern: RegExp): number {
  const global = new RegExp(
    pattern.source,
    pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g",
  );
  return [...text.matchAll(global)].length;
}

/** Starts `walsync watch <dbs> --bucket <bucket>` with stderr collected. */
export function startWatch(
  bucket: BucketArg,
  dbs: string[],
  options: WatchStart = {},
): WatchProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      mainTs,
      "watch",
      ...dbs,
      "--bucket",
      bucket.arg,
      "--sync-interval",
      options.syncInterval ?? "100ms",
      ...(options.args ?? []),
    ],
    env: { NO_COLOR: "1", ...bucket.env, ...options.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  let exited: Deno.CommandStatus | null = null;
  const status = child.status.then((s) => (exited = s));

  const waitForLog: WatchProcess["waitForLog"] = async (pattern, opts = {}) => {
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    const count = opts.count ?? 1;
    while (countMatches(text, pattern) < count) {
      if (exited) {
        await reading;
        if (countMatches(text, pattern) >= count) return;
        throw new Error(`watch exited (code ${exited.code}) before logging ${pattern}:\n${text}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`watch did not log ${pattern} ×${count} in time:\n${text}`);
      }
      await sleep(50);
    }
  };

  return {
    pid: child.pid,
    log: () => text,
    waitForLog,
    async stop(signal = "SIGTERM") {
      const started = Date.now();
      if (!exited) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
      const s = await status;
      await reading;
      return { code: s.code, ms: Date.now() - started, log: text };
    },
    async kill() {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await status;
      await reading.catch(() => {});
    },
  };
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `condition` every 100 ms until it holds; throws `what` on timeout. */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Runs a bash script; resolves with stdout and stderr, rejects on a non-zero exit. */
export async function bash(
  script: string,
  args: string[] = [],
): Promise<{ stdout: string; stderr: string }> {
  const out = await new Deno.Command("bash", {
    args: ["-c", script, "bash", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const result = { stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  if (out.code !== 0) {
    throw new Error(`bash script failed (${out.code}):\n${result.stderr}\n${result.stdout}`);
  }
  return result;
}

/** The application's table: rows with a tag, a counter, text and a blob. */
export const appSchema = `PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, tag TEXT NOT NULL, n INTEGER NOT NULL, body TEXT, data BLOB);
CREATE INDEX IF NOT EXISTS events_tag ON events(tag, n);`;

/** Options for {@link writer}. */
export interface WriterOptions {
  /** Transactions to commit. */
  transactions: number;
  /** Tag written into each row (tells concurrent writers apart). */
  tag?: string;
  /** Rows per transaction. */
  rows?: number;
  /** Largest blob in bytes (random size up to it). */
  blobMax?: number;
  /** SQL run after every `every` transactions, in its own sqlite3 call. */
  extra?: { every: number; sql: string };
  /** Seconds to sleep between transactions (bash `sleep`), e.g. 0.01. */
  pause?: number;
  /** Stop early once this file exists (then `transactions` is only an upper bound). */
  stopFile?: string;
}

/**
 * An application writing through the `sqlite3` CLI: one process per transaction, in a bash
 * loop, waiting up to 10 s on locks. Each transaction inserts rows, updates an older row and
 * (with more than one row per transaction) deletes one row of the transaction five before, so
 * pages are rewritten and freed, not only appended, and every transaction leaves rows behind.
 */
export function writer(db: string, options: WriterOptions): Promise<unknown> {
  const tag = options.tag ?? "w";
  const rows = options.rows ?? 3;
  const blobMax = options.blobMax ?? 3000;
  const extra = options.extra;
  const script = `
set -e
db="$1"; n="$2"; tag="$3"; rows="$4"; blob="$5"; every="$6"; extra="$7"; pause="$8"; stop="$9"
for i in $(seq 1 "$n"); do
  if [ -n "$stop" ] && [ -e "$stop" ]; then break; fi
  sqlite3 -bail -cmd ".timeout 10000" "$db" "BEGIN;
    INSERT INTO events(tag, n, body, data)
      SELECT '$tag', $i, printf('%s-%d-%d %s', '$tag', $i, value, hex(randomblob(16))),
             randomblob(1 + abs(random()) % $blob)
      FROM generate_series(1, $rows);
    UPDATE events SET body = body || '+' WHERE id = (SELECT max(id) / 2 FROM events);
    DELETE FROM events WHERE $rows > 1 AND id = (SELECT min(id) FROM events WHERE tag = '$tag' AND n = $i - 5);
    COMMIT;" >/dev/null
  if [ "$every" -gt 0 ] && [ $((i % every)) -eq 0 ]; then
    sqlite3 -bail -cmd ".timeout 10000" "$db" "$extra" >/dev/null
  fi
  if [ "$pause" != "0" ]; then sleep "$pause"; fi
done
`;
  return bash(script, [
    db,
    String(options.transactions),
    tag,
    String(rows),
    String(blobMax),
    String(extra?.every ?? 0),
    extra?.sql ?? "",
    String(options.pause ?? 0),
    options.stopFile ?? "",
  ]);
}

/** Restores `name` from `bucket` into a fresh file in `dir`; returns the CLI's result. */
export async function tryRestore(
  bucket: BucketArg,
  name: string,
  dir: string,
  extra: string[] = [],
): Promise<RunResult & { out: string }> {
  const out = join(dir, `restored-${crypto.randomUUID().slice(0, 8)}.db`);
  const r = await walsync(["restore", name, "--bucket", bucket.arg, "-o", out, ...extra], {
    env: bucket.env,
  });
  return { ...r, out };
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

/** A stored object's key, parsed (null for anything else, e.g. a file bucket's temp files). */
export interface StoredKey {
  key: string;
  db: string;
  generation: string;
  kind: "snapshot" | "wal";
  firstTxid: number;
  lastTxid: number;
}

const keyPattern =
  /^([^/]+)\/generations\/([^/]+)\/(?:snapshots\/([0-9a-f]{16})\.db|wal\/([0-9a-f]{16})-([0-9a-f]{16})\.wal)$/;

/** Parses a key of the bucket layout. */
export function parseStoredKey(key: string): StoredKey | null {
  const m = keyPattern.exec(key);
  if (!m) return null;
  const [, db, generation, snap, first, last] = m;
  if (snap !== undefined) {
    const txid = parseInt(snap, 16);
    return { key, db, generation, kind: "snapshot", firstTxid: txid, lastTxid: txid };
  }
  return {
    key,
    db,
    generation,
    kind: "wal",
    firstTxid: parseInt(first, 16),
    lastTxid: parseInt(last, 16),
  };
}

/** Every stored object of the layout (of `db` when given), in key order. */
export async function storedObjects(bucket: TestBucket, db?: string): Promise<StoredKey[]> {
  return (await bucket.keys()).map(parseStoredKey).filter((k): k is StoredKey =>
    k !== null && (db === undefined || k.db === db)
  );
}

/** Keys of WAL segments in the bucket (of `db` when given), sorted. */
export async function segmentKeys(bucket: TestBucket, db?: string): Promise<string[]> {
  return (await storedObjects(bucket, db)).filter((k) => k.kind === "wal").map((k) => k.key);
}

/** Generation ids in the bucket for `db`, oldest first. */
export async function generationsOf(bucket: TestBucket, db: string): Promise<string[]> {
  return [...new Set((await storedObjects(bucket, db)).map((k) => k.generation))].sort();
}

/** Highest txid any stored object of `db` reaches, by key (-1 when none). */
export async function maxStoredTxid(bucket: TestBucket, db: string): Promise<number> {
  return Math.max(-1, ...(await storedObjects(bucket, db)).map((k) => k.lastTxid));
}

/** A {@link TestBucket} on a private MinIO server (one a test may pause and resume). */
export const privateS3Bucket = s3BucketOn;

/** Runs SQL through the `sqlite3` CLI and reports the outcome instead of throwing. */
export async function sqliteTry(
  db: string,
  sql: string,
  timeoutMs = 2000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("sqlite3", {
    args: ["-bail", "-cmd", `.timeout ${timeoutMs}`, db, sql],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout).trim(),
    stderr: decoder.decode(out.stderr).trim(),
  };
}

/** Deletes one object (and, on `file://`, its metadata file) without Walsync code. */
export async function removeObject(bucket: TestBucket, key: string): Promise<void> {
  if (bucket.kind === "file") {
    const dir = (bucket as TestBucket & { dir: string }).dir;
    await Deno.remove(join(dir, key));
    await Deno.remove(join(dir, `${key}.meta.json`)).catch(() => {});
    return;
  }
  const s3 = bucket as S3TestBucket;
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${s3.prefix}/${key}` }));
}

/** A long-lived `sqlite3` CLI connection, like an application server's, driven statement by statement. */
export interface SqliteSession {
  /** Runs SQL and waits until it finished (a marker row comes back); returns what it printed. */
  run(sql: string): Promise<string>;
  /** Ends the session (closing the connection) and waits for the exit. */
  close(): Promise<void>;
}

/** Opens a {@link SqliteSession} on `db` (waiting up to 10 s on locks). */
export function sqliteSession(db: string): SqliteSession {
  const child = new Deno.Command("sqlite3", {
    args: ["-bail", "-cmd", ".timeout 10000", db],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const input = child.stdin.getWriter();
  const output = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let count = 0;
  let closed = false;
  return {
    async run(sql) {
      const marker = `--done-${++count}--`;
      await input.write(new TextEncoder().encode(`${sql}\nSELECT '${marker}';\n`));
      while (!buffered.includes(marker)) {
        const { value, done } = await output.read();
        if (done) {
          const err = await new Response(child.stderr).text().catch(() => "");
          throw new Error(`sqlite3 session ended before finishing ${sql}: ${err}`);
        }
        buffered += value;
      }
      const [before, after] = buffered.split(marker);
      buffered = after.replace(/^\n/, "");
      return before.trim();
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await input.close();
      } catch {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await output.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
    },
  };
}
