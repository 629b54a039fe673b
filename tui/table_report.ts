/**
 * What is inside a freshly restored database: the row counts of its largest tables, shown so
 * the operator can see at a glance that the data is there (not just that the bytes match).
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** One table of a restored database. */
export interface TableRows {
  /** Table name. */
  name: string;
  /** `COUNT(*)`, or null when the table cannot be read here (a virtual table's module is missing). */
  rows: number | null;
  /** Bytes its b-tree uses, when SQLite's `dbstat` is available. */
  bytes?: number;
}

/** The largest tables of a database and how many there are in all. */
export interface TableReport {
  /** Largest first, at most the limit asked for. */
  largest: TableRows[];
  /** Ordinary tables in the database. */
  tableCount: number;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function readOnlyUri(path: string): string {
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  // immutable=1: nothing else has this new file open, and it stops SQLite from creating
  // -wal/-shm files beside it (a WAL-mode file opened read-only would otherwise get both).
  return `file:${encoded}?mode=ro&immutable=1`;
}

/** Opens `path` read-only and counts the rows of its `limit` largest tables (by size on disk). */
export function tableReport(path: string, limit = 5): TableReport {
  const db = new DatabaseSync(readOnlyUri(path), { readOnly: true });
  try {
    const names = (db.prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    ).all() as { name: string }[]).map((row) => row.name);
    let sizes = new Map<string, number>();
    try {
      const rows = db.prepare("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name")
        .all() as {
          name: string;
          bytes: number;
        }[];
      sizes = new Map(rows.map((row) => [row.name, Number(row.bytes)]));
    } catch {
      // Built without dbstat: rank by row count instead.
    }
    let tables: TableRows[];
    if (sizes.size > 0) {
      const ranked = names.map((name) => ({ name, bytes: sizes.get(name) ?? 0 }))
        .sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name))
        .slice(0, limit);
      tables = ranked.map((t) => ({ ...t, rows: countRows(db, t.name) }));
    } else {
      tables = names.map((name) => ({ name, rows: countRows(db, name) }))
        .sort((a, b) => (b.rows ?? -1) - (a.rows ?? -1) || a.name.localeCompare(b.name))
        .slice(0, limit);
    }
    return { largest: tables, tableCount: names.length };
  } finally {
    db.close();
  }
}

function countRows(db: DatabaseSync, table: string): number | null {
  try {
    const row = db.prepare(`SELECT COUNT(*) AS n FROM ${quoteIdent(table)}`).get() as { n: number };
    return Number(row.n);
  } catch {
    return null;
  }
}
