/**
 * The torture test's writers: the Debian `sqlite3` CLI (SQLite 3.40.1, one process per call)
 * and a long-lived `node:sqlite` connection (SQLite 3.53) in its own Deno process. Both run the
 * same statements; every row a statement returns comes back as one line of text.
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TxEffect } from "./model.ts";

/** Something that runs SQL statements on the source database. */
export interface Writer {
  /** `cli` or `node`, for messages and the `w` column. */
  readonly name: string;
  /** Runs `statements` in order; resolves with every returned row's first column, throws on error. */
  run(statements: string[]): Promise<string[]>;
  /** Lets go of any connection it holds (the next `run` opens one again). */
  release(): Promise<void>;
  /** Ends the writer for good. */
  close(): Promise<void>;
}

/** The `sqlite3` CLI, a new process (and connection) for every call. */
export function cliWriter(path: () => string): Writer {
  return {
    name: "cli",
    async run(statements) {
      const child = new Deno.Command("sqlite3", {
        args: ["-bail", "-cmd", ".timeout 10000", path()],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const input = child.stdin.getWriter();
      await input.write(new TextEncoder().encode(statements.join("\n") + "\n"));
      await input.close();
      const out = await child.output();
      const decoder = new TextDecoder();
      if (out.code !== 0) {
        throw new Error(`sqlite3 failed (${out.code}): ${decoder.decode(out.stderr).trim()}`);
      }
      return decoder.decode(out.stdout).split("\n").filter((line) => line !== "");
    },
    async release() {},
    async close() {},
  };
}

const nodeWriterTs = join(dirname(fileURLToPath(import.meta.url)), "node_writer.ts");

/** A `node:sqlite` connection in a separate Deno process, opened on first use. */
export function nodeWriter(path: () => string): Writer {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", nodeWriterTs],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const input = child.stdin.getWriter();
  const output = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let open = false;
  let queue: Promise<unknown> = Promise.resolve();

  const ask = async (command: unknown): Promise<{ lines?: string[]; error?: string }> => {
    await input.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    while (!buffered.includes("\n")) {
      const { value, done } = await output.read();
      if (done) throw new Error("node:sqlite writer exited");
      buffered += value;
    }
    const newline = buffered.indexOf("\n");
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    return JSON.parse(line);
  };
  // One command at a time: answers come back in order on one pipe.
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const result = queue.then(work, work);
    queue = result.catch(() => {});
    return result;
  };

  return {
    name: "node",
    run: (statements) =>
      serial(async () => {
        if (!open) {
          const opened = await ask({ open: path() });
          if (opened.error) throw new Error(`node:sqlite open failed: ${opened.error}`);
          open = true;
        }
        const answer = await ask({ run: statements });
        if (answer.error !== undefined) throw new Error(`node:sqlite failed: ${answer.error}`);
        return answer.lines ?? [];
      }),
    release: () =>
      serial(async () => {
        if (open) await ask({ close: true });
        open = false;
      }),
    async close() {
      await queue;
      await input.close().catch(() => {});
      await output.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Schema of the source database; `meta.seq` counts the transactions the writers committed. */
export function schemaSql(seq: number): string[] {
  return [
    "PRAGMA journal_mode=WAL;",
    "BEGIN IMMEDIATE;",
    "CREATE TABLE meta(k INTEGER PRIMARY KEY CHECK (k = 1), seq INTEGER NOT NULL);",
    `INSERT INTO meta VALUES (1, ${seq});`,
    "CREATE TABLE t(id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, w TEXT NOT NULL, data BLOB);",
    "CREATE INDEX t_seq ON t(seq);",
    "COMMIT;",
  ];
}

/** What one random transaction does. */
export interface TxPlan {
  /** Groups of inserted rows: how many, and the blob length of each. */
  inserts: { count: number; len: number }[];
  /** Ids of rows to rewrite with a blob of `len` bytes. */
  rewrites: { ids: number[]; len: number }[];
  /** Ids of rows to delete. */
  deletes: number[];
  /** Delete the `n` largest rows too (keeps the database small). */
  deleteLargest: number;
  /** End with ROLLBACK instead of COMMIT. */
  rollback: boolean;
}

/** The statements of a transaction; its rows come back as `seq:N`, `w:id:len`, `d:id`. */
export function txSql(plan: TxPlan, writer: string): string[] {
  const seq = "(SELECT seq FROM meta)";
  const sql = ["BEGIN IMMEDIATE;", "UPDATE meta SET seq = seq + 1 RETURNING 'seq:' || seq;"];
  let offset = 0;
  for (const { count, len } of plan.inserts) {
    sql.push(
      `WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${count}) ` +
        `INSERT INTO t(id, seq, w, data) SELECT ${seq} * 1000 + ${offset} + v, ${seq}, ` +
        `'${writer}', randomblob(${len}) FROM s WHERE true ` +
        `RETURNING 'w:' || id || ':' || length(data);`,
    );
    offset += count;
  }
  for (const { ids, len } of plan.rewrites) {
    if (ids.length === 0) continue;
    sql.push(
      `UPDATE t SET seq = ${seq}, w = '${writer}', data = randomblob(${len}) ` +
        `WHERE id IN (${ids.join(",")}) RETURNING 'w:' || id || ':' || length(data);`,
    );
  }
  if (plan.deletes.length > 0) {
    sql.push(`DELETE FROM t WHERE id IN (${plan.deletes.join(",")}) RETURNING 'd:' || id;`);
  }
  if (plan.deleteLargest > 0) {
    sql.push(
      `DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY length(data) DESC ` +
        `LIMIT ${plan.deleteLargest}) RETURNING 'd:' || id;`,
    );
  }
  sql.push(plan.rollback ? "ROLLBACK;" : "COMMIT;");
  return sql;
}

/** Reads a committed transaction's effect from its returned lines. */
export function parseEffect(lines: string[], writer: string): TxEffect {
  const effect: TxEffect = { seq: -1, writer, written: [], deleted: [] };
  for (const line of lines) {
    const [kind, a, b] = line.split(":");
    if (kind === "seq") effect.seq = Number(a);
    else if (kind === "w") effect.written.push([Number(a), Number(b)]);
    else if (kind === "d") effect.deleted.push(Number(a));
  }
  if (effect.seq < 0) {
    throw new Error(`transaction by ${writer} returned no seq: ${lines.join(" ")}`);
  }
  return effect;
}
