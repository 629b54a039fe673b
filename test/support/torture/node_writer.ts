/**
 * The torture test's second writer: a separate Deno process holding one `node:sqlite`
 * connection (SQLite 3.53, another build than the `sqlite3` CLI's 3.40), like an application
 * server. It reads one JSON command per line on stdin and answers one JSON line on stdout:
 *
 * - `{"open": "/path/app.db"}`: open (closing any connection first), busy timeout 10 s.
 * - `{"close": true}`: close the connection.
 * - `{"run": ["SQL", ...]}`: run each statement; answers `{"lines": [...]}`, the first column
 *   of every row the statements returned, as text; on an error it rolls back any open
 *   transaction and answers `{"error": "..."}`.
 *
 * It runs in its own process because the test process must hold no connection to the database
 * beside the watcher's (docs/sqlite-facts.md fact 1).
 * @module
 */
import { DatabaseSync } from "node:sqlite";

let db: DatabaseSync | null = null;

function handle(command: { open?: string; close?: boolean; run?: string[] }): unknown {
  if (command.open !== undefined) {
    db?.close();
    db = new DatabaseSync(command.open);
    db.exec("PRAGMA busy_timeout = 10000");
    return { ok: true };
  }
  if (command.close) {
    db?.close();
    db = null;
    return { ok: true };
  }
  if (!db) return { error: "not open" };
  const lines: string[] = [];
  try {
    for (const sql of command.run ?? []) {
      for (const row of db.prepare(sql).all()) {
        const first = Object.values(row as Record<string, unknown>)[0];
        lines.push(String(first));
      }
    }
    return { lines };
  } catch (err) {
    try {
      if (db.isTransaction) db.exec("ROLLBACK");
    } catch { /* the error ended it already */ }
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

if (import.meta.main) {
  const encoder = new TextEncoder();
  let buffered = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (!line.trim()) continue;
      const answer = handle(JSON.parse(line));
      await Deno.stdout.write(encoder.encode(JSON.stringify(answer) + "\n"));
    }
  }
  (db as DatabaseSync | null)?.close();
}
