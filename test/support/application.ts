/**
 * The test application: its table (one schema for every test), a seeded database, one
 * transaction, and writer loops of `sqlite3` processes in bash.
 * @module
 */
import { join } from "node:path";
import { sqlite } from "./sqlite.ts";

/** The application's table: rows with a tag, a counter, text and a blob. */
export const appSchema = `PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, tag TEXT NOT NULL, n INTEGER NOT NULL, body TEXT, data BLOB);
CREATE INDEX IF NOT EXISTS events_tag ON events(tag, n);`;

/** A fresh WAL database with the application's schema and a few rows. */
export async function appDatabase(dir: string, file = "app.db"): Promise<string> {
  const db = join(dir, file);
  await sqlite(
    db,
    `${appSchema}
     INSERT INTO events(tag, n, body, data)
       SELECT 'seed', value, hex(randomblob(40)), randomblob(500) FROM generate_series(1, 50);`,
  );
  return db;
}

/** One transaction of the application: a few rows, an update, a delete. */
export function commit(db: string, tag: string, n: number): Promise<string> {
  return sqlite(
    db,
    `.timeout 10000
     BEGIN;
     INSERT INTO events(tag, n, body, data)
       SELECT '${tag}', ${n}, printf('%s-%d %s', '${tag}', ${n}, hex(randomblob(16))),
              randomblob(1 + abs(random()) % 2000)
       FROM generate_series(1, 3);
     UPDATE events SET body = body || '+' WHERE id = (SELECT max(id) / 2 FROM events);
     DELETE FROM events WHERE id = (SELECT min(id) FROM events WHERE tag = '${tag}' AND n = ${
      n - 5
    });
     COMMIT;`,
  );
}

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
