/**
 * What the torture test reads from a database (the source or a restore) and from a bucket,
 * always through separate processes: the `sqlite3` CLI for databases, the `walsync` CLI for
 * the bucket (so the test keeps working whatever Walsync's code looks like inside).
 * @module
 */
import { join } from "node:path";
import { walsync } from "../walsync.ts";
import type { BucketArg } from "../bucket.ts";
import { shapeDigest, shapeSql } from "./model.ts";

/** A database's content as the checks compare it. */
export interface DbState {
  /** `PRAGMA integrity_check` output. */
  integrity: string;
  /** `.sha3sum` of every table's content. */
  sha3: string;
  /** `meta.seq`, or null when the database has no `meta` table. */
  seq: number | null;
  /** Digest of the rows' shapes (see `shapeDigest`). */
  shape: string;
  /** Number of tables (0 for a database created but not yet given its schema). */
  tables: number;
  /** Rows in `t`. */
  rows: number;
}

/** Reads a database's state with one `sqlite3` process. */
export async function inspect(db: string): Promise<DbState> {
  const script = [
    ".timeout 10000",
    "SELECT '#integrity';",
    "PRAGMA integrity_check;",
    "SELECT '#sha3';",
    ".sha3sum",
    "SELECT '#tables';",
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table';",
    "SELECT '#seq';",
    "SELECT seq FROM meta;",
    "SELECT '#shape';",
    shapeSql,
  ].join("\n");
  const child = new Deno.Command("sqlite3", {
    args: [db],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const input = child.stdin.getWriter();
  await input.write(new TextEncoder().encode(script + "\n"));
  await input.close();
  const out = await child.output();
  const sections = new Map<string, string[]>();
  let current = "";
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (line.startsWith("#")) {
      current = line;
      sections.set(current, []);
    } else if (line !== "") sections.get(current)?.push(line);
  }
  const seqLine = sections.get("#seq")?.[0];
  const shape = sections.get("#shape") ?? [];
  return {
    integrity: (sections.get("#integrity") ?? []).join(" ") ||
      `(none: ${new TextDecoder().decode(out.stderr).trim()})`,
    sha3: (sections.get("#sha3") ?? []).join(""),
    seq: seqLine === undefined ? null : Number(seqLine),
    shape: shapeDigest(shape),
    tables: Number(sections.get("#tables")?.[0] ?? -1),
    rows: shape.length,
  };
}

/** A restorable point as `walsync list <db> --generations --json` shows it. */
export interface ListedPoint {
  generation: string;
  kind: string;
  txidFirst: number;
  txidLast: number;
}

/** What `walsync list --json` says of one database. */
export interface ListedDb {
  /** Highest txid (-1 when the database has no backup). */
  latestTxid: number;
  /** Generations stored (0 when none). */
  generations: number;
}

/** `walsync list --json`, for database `name`; throws when list fails. */
export async function listDb(bucket: BucketArg, name: string): Promise<ListedDb> {
  const r = await walsync(["list", "--bucket", bucket.arg, "--json"], { env: bucket.env });
  if (r.code !== 0) throw new Error(`walsync list failed (${r.code}): ${r.stderr.trim()}`);
  const db = (JSON.parse(r.stdout).databases as (ListedDb & { name: string })[])
    .find((d) => d.name === name);
  return { latestTxid: db?.latestTxid ?? -1, generations: db?.generations ?? 0 };
}

/** What `walsync status --json` says of one database. */
export interface DbStatus extends ListedDb {
  /** Whether every generation's objects form an unbroken chain. */
  chainOk: boolean;
  /** What is wrong, one line each. */
  problems: string[];
}

/** `walsync status <name> --json` (exit 5 with a broken chain still answers); throws otherwise. */
export async function statusDb(bucket: BucketArg, name: string): Promise<DbStatus> {
  const r = await walsync(["status", name, "--bucket", bucket.arg, "--json"], { env: bucket.env });
  let db: DbStatus | undefined;
  try {
    db = (JSON.parse(r.stdout).databases as (DbStatus & { name: string })[])
      .find((d) => d.name === name);
  } catch { /* not JSON: reported below */ }
  if (!db) throw new Error(`walsync status failed (${r.code}): ${r.stderr.trim()}`);
  return db;
}

/** `walsync verify <name> --json`: every object's digest, size, header and chain; the problems. */
export async function verifyDb(bucket: BucketArg, name: string): Promise<string[]> {
  const r = await walsync(["verify", name, "--bucket", bucket.arg, "--json"], { env: bucket.env });
  try {
    const report = JSON.parse(r.stdout) as { ok: boolean; failures?: unknown[] };
    if (r.code === 0 && report.ok) return [];
    return (report.failures ?? []).map((f) => JSON.stringify(f)).concat(`exit ${r.code}`);
  } catch {
    return [`exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`];
  }
}

/** Every restorable point of `name`. */
export async function listedPoints(bucket: BucketArg, name: string): Promise<ListedPoint[]> {
  const r = await walsync(["list", name, "--generations", "--bucket", bucket.arg, "--json"], {
    env: bucket.env,
  });
  if (r.code !== 0) throw new Error(`walsync list ${name} failed (${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout).points as ListedPoint[];
}

/** A restore's outcome: the file and the txid it reached, or the CLI's error. */
export interface Restored {
  code: number;
  path: string;
  txid: number | null;
  error: string;
}

let restores = 0;

/** `walsync restore <name> -o <dir>/r-N.db [--txid T] --json`. */
export async function restore(
  bucket: BucketArg,
  name: string,
  dir: string,
  txid?: number,
): Promise<Restored> {
  const path = join(dir, `restore-${++restores}.db`);
  const args = ["restore", name, "--bucket", bucket.arg, "-o", path, "--json"];
  if (txid !== undefined) args.push("--txid", String(txid));
  const r = await walsync(args, { env: bucket.env });
  let reached: number | null = null;
  try {
    reached = JSON.parse(r.stdout).txid ?? null;
  } catch { /* not JSON: the error is in stderr */ }
  return { code: r.code, path, txid: reached, error: (r.stderr || r.stdout).trim().slice(0, 600) };
}
