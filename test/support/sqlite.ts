/**
 * SQLite through the Debian `sqlite3` CLI, a program independent of Walsync: one-shot statements
 * (failing, waiting on locks, or reporting), a long-lived session like an application server's,
 * and a database's content hash with its integrity_check.
 * @module
 */

/** Runs SQL through the Debian `sqlite3` CLI and returns its stdout; throws on failure. */
export async function sqlite(db: string, sql: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", {
    args: ["-bail", db],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(sql));
  await writer.close();
  const result = await out.output();
  const stderr = new TextDecoder().decode(result.stderr);
  if (result.code !== 0) throw new Error(`sqlite3 ${db} failed: ${stderr}`);
  return new TextDecoder().decode(result.stdout).trim();
}

/** Runs SQL with the `sqlite3` CLI, waiting up to 10 s on locks; throws on failure. */
export async function sqliteRead(db: string, sql: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", {
    args: ["-bail", "-cmd", ".timeout 10000", db, sql],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (out.code !== 0) throw new Error(`sqlite3 ${db} ${sql}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout).trim();
}

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

/** `.sha3sum` (every table's content) and `PRAGMA integrity_check` of a database. */
export async function dbFingerprint(db: string): Promise<{ sha3: string; integrity: string }> {
  const integrity = await sqliteRead(db, "PRAGMA integrity_check;");
  const sha3 = await sqliteRead(db, ".sha3sum");
  return { sha3, integrity };
}

/** The `.sha3sum` of a database (every table's content). */
export async function contentHash(db: string): Promise<string> {
  return await sqliteRead(db, ".sha3sum");
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
